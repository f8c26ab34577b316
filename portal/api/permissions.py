from rest_framework.permissions import BasePermission


def perm_required(perm: str, missing: str):
    """A DRF permission class that asks for one Django permission and says what is missing."""

    class HasPerm(BasePermission):
        message = missing

        def has_permission(self, request, view):
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

    HasPerm.__name__ = f"Has_{perm.replace('.', '_')}"
    return HasPerm
