"""The incidents report: how fast incidents of each severity were detected, acknowledged and
resolved over the last days, against their targets (see incidents.measures for the definitions)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from incidents.measures import REPORT_DAYS, REPORT_DAYS_MAX
from incidents.selectors import incident_report
from portal import clock
from portal.roles import Right, has_right, missing_right_message
from portal.views.errors import forbidden


class ReportForm(forms.Form):
    days = forms.IntegerField(
        label=f"Days (1 to {REPORT_DAYS_MAX})", min_value=1, max_value=REPORT_DAYS_MAX, required=False
    )


@login_required
def incident_report_page(request):
    if not has_right(request.user, Right.INCIDENT_VIEW):
        return forbidden(request, reason=missing_right_message(Right.INCIDENT_VIEW))
    form = ReportForm(request.GET or None, initial={"days": REPORT_DAYS})
    if form.is_bound and not form.is_valid():
        return render(request, "incidents/report.html", {"form": form}, status=400)
    days = (form.cleaned_data.get("days") if form.is_bound else None) or REPORT_DAYS
    report = incident_report(request.user, days=days, now=clock.now())
    return render(request, "incidents/report.html", {"form": form, "report": report})
