"""The signed-in person's own security: the second factor, API tokens, break-glass, lockout."""

from urllib.parse import urlencode

import django_otp
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portal import lockout, mfa, selectors, services
from portal.api.errors import json_error
from portal.forms import ApiTokenForm, BreakGlassForm, OTPForm, PasswordChangeForm, PasswordResetForm
from portal.oidc import passed_second_factor
from portal.roles import Right, missing_right_message
from portal.views.errors import forbidden, right_needed


def locked_out(request, response=None, credentials=None):
    """django-axes calls this when a sign-in is refused for too many failures."""
    username = (credentials or {}).get("username") or request.POST.get("username")
    return lockout_response(request, lockout.sign_in_retry_at(request, username))


def lockout_response(request, retry_at):
    """429 saying when to try again (and Retry-After, in seconds): the lockout page, or JSON
    under /api/."""
    message = lockout.lockout_message(retry_at)
    if request.path.startswith("/api/"):
        response = json_error(429, message, "throttled")
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(lockout.retry_after_seconds(retry_at))
    return response


class SignInView(auth_views.LoginView):
    """The password step (django-axes refuses it while locked out); the second factor follows."""

    def form_valid(self, form):
        response = super().form_valid(form)
        services.sign_in_record(user=form.get_user(), step="password")
        return response


class SignOutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            services.sign_out_record(user=request.user)
        return super().post(request, *args, **kwargs)


@login_required
def password_change(request):
    """A new password for a signed-in person, with the old one and a current code. This session
    stays signed in; every other one (and the calendar feed's key) ends."""
    if not request.user.has_usable_password():
        return render(request, "account/password_change.html", {"form": None})
    form = PasswordChangeForm(request.user, request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        verdict = mfa.check_form_code(request, form) if form.is_valid() else None
        if verdict is not None and verdict.ok:
            user = services.password_set(
                user=request.user,
                password=form.cleaned_data["new_password1"],
                how="change",
                confirmed_by=mfa.device_words(verdict.device),
            )
            auth.update_session_auth_hash(request, user)
            messages.success(request, "Your password is changed; every other session has ended.")
            return redirect("password-change")
    return render(request, "account/password_change.html", {"form": form}, status=status)


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The link's page: a new password, audited. It signs nobody in: signing in afterwards still
    takes the code from the authenticator, so a mailbox alone opens no account."""

    post_reset_login = False

    def form_valid(self, form):
        services.password_set(user=form.user, password=form.cleaned_data["new_password1"], how="reset")
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return redirect(self.get_success_url())


def second_factor_url(next_url: str) -> str:
    return f"{reverse('login-otp')}?{urlencode({'next': next_url})}"


def _safe_next(request, default: str = "/") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=False):
        return candidate
    return default


@login_required
def login_otp(request):
    """The second step of signing in: a code from the authenticator app or a backup code."""
    if passed_second_factor(request):
        return redirect(_safe_next(request))
    if not mfa.has_device(request.user):
        return redirect("mfa-setup")
    form = OTPForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        verdict = mfa.check_form_code(request, form)
        if verdict.ok:
            # A new session key once the second factor is passed, as at the password: a key
            # planted before sign-in never becomes a verified session.
            request.session.cycle_key()
            django_otp.login(request, verdict.device)
            mfa.failures_clear(request, request.user)
            services.sign_in_record(
                user=request.user, step="second_factor", device=mfa.device_words(verdict.device)
            )
            return redirect(_safe_next(request))
        status = 400
    return render(
        request, "registration/login_otp.html", {"form": form, "next": _safe_next(request)}, status=status
    )


@login_required
def mfa_setup(request):
    """Enrols an authenticator app (QR code, then a code to prove it works) and shows backup codes once."""
    if mfa.has_device(request.user):
        if not passed_second_factor(request):
            return redirect(second_factor_url(request.path))
        return render(request, "account/mfa.html", {"enrolled": True, "form": OTPForm()})
    device = mfa.totp_device_pending(request.user)
    form = OTPForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        verdict = mfa.check_form_code(request, form, devices=[device])
        if verdict.ok:
            codes = services.mfa_totp_confirm(actor=request.user, device=device)
            django_otp.login(request, device)
            return render(request, "account/backup_codes.html", {"codes": codes})
        status = 400
    context = {
        "enrolled": False,
        "form": form,
        "qr_svg": mfa.qr_code_svg(device),
        "secret": device.config_url,
    }
    return render(request, "account/mfa.html", context, status=status)


@login_required
@require_POST
def mfa_backup_codes(request):
    """New backup codes (the old ones stop working); takes a current code."""
    form = OTPForm(request.POST)
    if form.is_valid() and mfa.check_form_code(request, form).ok:
        codes = services.mfa_backup_codes_regenerate(actor=request.user)
        return render(request, "account/backup_codes.html", {"codes": codes})
    return render(request, "account/mfa.html", {"enrolled": True, "form": form}, status=400)


@login_required
def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        status = 400
        verdict = mfa.check_form_code(request, form) if form.is_valid() else None
        if verdict is not None and verdict.ok:
            data = {key: value for key, value in form.cleaned_data.items() if key != "otp"}
            try:
                token, secret = services.api_token_create(
                    actor=request.user, confirmed_by=mfa.device_words(verdict.device), **data
                )
            except ValidationError as refused:
                form.add_error(None, " ".join(refused.messages))
            else:
                created = {"token": token, "secret": secret}
                form = ApiTokenForm()
                status = 200
    context = {"form": form, "tokens": selectors.api_tokens_of(request.user), "created": created}
    return render(request, "account/tokens.html", context, status=status)


@login_required
@require_POST
def api_token_revoke(request, key: str):
    token = get_object_or_404(selectors.api_tokens_of(request.user), token_key=key)
    services.api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Revoked the token “{token.name}”.")
    return redirect("api-tokens")


@login_required
def break_glass(request):
    """Administrators open an emergency session here; auditors see every session as an exception."""
    user = request.user
    if not (user.has_perm(Right.BREAK_GLASS_OPEN) or user.has_perm(Right.AUDIT_VIEW)):
        return forbidden(request, reason=missing_right_message(Right.BREAK_GLASS_OPEN))
    form = BreakGlassForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not user.has_perm(Right.BREAK_GLASS_OPEN):
            return forbidden(request, reason=missing_right_message(Right.BREAK_GLASS_OPEN))
        status = 400
        if form.is_valid() and mfa.check_form_code(request, form).ok:
            try:
                session = services.break_glass_open(actor=user, reason=form.cleaned_data["reason"])
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.warning(
                    request,
                    f"Break-glass is open until {session.expires_at:%H:%M} UTC. Every act is marked.",
                )
                return redirect("break-glass")
    context = {
        "form": form,
        "can_open": user.has_perm(Right.BREAK_GLASS_OPEN),
        "sessions": selectors.break_glass_sessions_visible_to(user)[:50],
    }
    return render(request, "account/break_glass.html", context, status=status)


@login_required
@require_POST
@right_needed(Right.BREAK_GLASS_OPEN)
def break_glass_close(request, pk: int):
    session = get_object_or_404(selectors.break_glass_sessions_visible_to(request.user), pk=pk)
    try:
        services.break_glass_close(actor=request.user, session=session)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Break-glass session ended; your rights are back to normal.")
    return redirect("break-glass")
