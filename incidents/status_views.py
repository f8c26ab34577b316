"""The public status page and its e-mail subscriptions: no sign-in, nothing of the portal around it.

The kept page is served as it is while it is fresh (see `status.status_page_current`), else the page
is built afresh and kept; when the database fails or is too slow, the kept copy is served saying
when it was built, and with none a plain 503 says the status cannot be read. One address may ask
for a subscription a few times an hour (`status_subscriptions.SUBSCRIBE_LIMIT`), then gets a 429.
The links in the e-mails open a page with one button, so a mail scanner that follows links neither
confirms nor ends a subscription.

Pages are drawn without the request's context processors: they read nothing of the viewer (who
would cost a database read when the database is down), only the CSRF token of the form.
"""

import logging

from django import forms
from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from incidents import status, status_subscriptions
from incidents.measures import duration_in_words

logger = logging.getLogger(__name__)

# What a database that is down or cancelled a slow read raises.
UNREADABLE = (DatabaseError, InterfaceError)


class SubscribeForm(forms.Form):
    email = forms.CharField(max_length=254, error_messages={"required": "Enter your e-mail address."})

    def clean_email(self) -> str:
        return status_subscriptions.normalised_email(self.cleaned_data["email"])


def _html(request, template: str, context: dict, *, status_code: int = 200) -> HttpResponse:
    context = {"csrf_token": get_token(request), **context}
    return HttpResponse(render_to_string(template, context), status=status_code)


def _unavailable(request, what: str) -> HttpResponse:
    response = _html(request, "status/unavailable.html", {"what": what}, status_code=503)
    response["Retry-After"] = "30"
    return response


def _page(request, form: SubscribeForm, *, status_code: int = 200, refusal: str = "") -> HttpResponse:
    try:
        page = status.status_page_current()
    except UNREADABLE:
        logger.warning("status page: the database could not be read; serving the last copy", exc_info=True)
        page = status.status_page_kept()
        if page is None:
            return _unavailable(request, "The status cannot be read right now.")
        stale = True
    else:
        stale = False
    context = {
        "page": page,
        "stale": stale,
        "form": form,
        "refusal": refusal,
        "subscribed": request.GET.get("subscribed") == "1" and status_code == 200,
    }
    return _html(request, "status/page.html", context, status_code=status_code)


@require_http_methods(["GET", "HEAD"])
def status_page(request):
    return _page(request, SubscribeForm())


@require_POST
def status_subscribe(request):
    """Takes an address for updates; the answer is the same whether it was subscribed already."""
    form = SubscribeForm(request.POST)
    wait = status_subscriptions.subscribe_throttled(ip=request.client_ip)
    if wait is not None:
        refusal = (
            "Too many subscriptions were asked for from your network in the last hour. "
            f"Please try again in {duration_in_words(wait)}."
        )
        response = _page(request, form, status_code=429, refusal=refusal)
        response["Retry-After"] = str(int(wait.total_seconds()))
        return response
    if not form.is_valid():
        return _page(request, form, status_code=400)
    try:
        status_subscriptions.status_subscribe(email=form.cleaned_data["email"], request=request)
    except ValidationError as refused:
        form.add_error("email", refused)
        return _page(request, form, status_code=400)
    except UNREADABLE:
        logger.warning("status page: a subscription could not be written", exc_info=True)
        return _unavailable(request, "Subscriptions cannot be taken right now. Please try again later.")
    return redirect(f"{reverse('status-page')}?subscribed=1#subscribe")


def _by_link(request, token: str, *, act, look, template: str):
    """A confirm or unsubscribe link: GET asks with a button, POST does it; a link that does not
    work (any more) says why."""
    try:
        done = act(token=token) if request.method == "POST" else look(token)
    except status_subscriptions.LinkRefused as refused:
        return _html(
            request, "status/link_unknown.html", {"reason": refused.reason}, status_code=refused.status
        )
    except UNREADABLE:
        logger.warning("status page: a subscription link could not be followed", exc_info=True)
        return _unavailable(request, "Your subscription cannot be changed right now. Please try again later.")
    if not done:
        context = {"reason": status_subscriptions.UNKNOWN}
        return _html(request, "status/link_unknown.html", context, status_code=404)
    return _html(request, template, {"token": token, "done": request.method == "POST"})


@require_http_methods(["GET", "HEAD", "POST"])
def status_confirm(request, token: str):
    return _by_link(
        request,
        token,
        act=status_subscriptions.status_subscription_confirm,
        look=status_subscriptions.confirmation_of,
        template="status/confirm.html",
    )


@require_http_methods(["GET", "HEAD", "POST"])
def status_unsubscribe(request, token: str):
    return _by_link(
        request,
        token,
        act=status_subscriptions.status_unsubscribe,
        look=status_subscriptions.subscriber_by_token,
        template="status/unsubscribe.html",
    )
