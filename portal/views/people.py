"""People and their rights, for policy administrators: roles, capacities, lockouts.

Every change takes a current code from the administrator's authenticator and is audited;
nobody changes their own rights.
"""

from axes.models import AccessAttempt
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render

from portal import mfa, services
from portal.forms import CapacityForm, OTPForm, RoleForm
from portal.models import CodeFailures, User
from portal.roles import Right, missing_right_message
from portal.views.errors import forbidden

ACTIONS = {"role": RoleForm, "capacity": CapacityForm, "unlock": OTPForm}


@login_required
def people(request):
    if not (request.user.has_perm(Right.ROLE_GRANT) or request.user.has_perm(Right.AUDIT_VIEW)):
        return forbidden(request, reason=missing_right_message(Right.ROLE_GRANT))
    users = User.objects.prefetch_related("capacities").order_by("username")
    locked = set(AccessAttempt.objects.values_list("username", flat=True)) | set(
        CodeFailures.objects.values_list("user__username", flat=True)
    )
    return render(request, "account/people.html", {"people": users, "locked": locked})


@login_required
def person(request, pk: int):
    if not request.user.has_perm(Right.ROLE_GRANT):
        return forbidden(request, reason=missing_right_message(Right.ROLE_GRANT))
    subject = get_object_or_404(User.objects.prefetch_related("capacities"), pk=pk)
    forms = {name: form_class(prefix=name) for name, form_class in ACTIONS.items()}
    status = 200
    action = request.POST.get("action_form")
    if request.method == "POST" and action in ACTIONS:
        form = ACTIONS[action](request.POST, prefix=action)
        forms[action] = form
        status = 400
        if form.is_valid() and mfa.check_form_code(request, form).ok:
            try:
                message = _apply(action, request.user, subject, form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, message)
                return redirect("person", pk=subject.pk)
    return render(request, "account/person.html", {"subject": subject, "forms": forms}, status=status)


def _apply(action: str, actor: User, subject: User, data: dict) -> str:
    if action == "role":
        services.user_role_set(actor=actor, user=subject, role=data["role"])
        return f"{subject.username} is now a {subject.get_role_display()}."
    if action == "capacity" and data["action"] == "grant":
        services.user_capacity_grant(actor=actor, user=subject, capacity=data["capacity"])
        return f"Granted {data['capacity']} to {subject.username}."
    if action == "capacity":
        services.user_capacity_revoke(actor=actor, user=subject, capacity=data["capacity"])
        return f"Revoked {data['capacity']} from {subject.username}."
    services.user_unlock(actor=actor, user=subject)
    return f"Unlocked {subject.username}."
