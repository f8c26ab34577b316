"""Change requests, checklists, approvals, windows and freezes, and the SCM (GitHub or local git)."""
