from django.urls import path

from changes.api import views

urlpatterns = [
    path("changes/", views.ChangeList.as_view(), name="api-change-list"),
    path("changes/<int:pk>/", views.ChangeDetail.as_view(), name="api-change-detail"),
    path("changes/<int:pk>/submit/", views.ChangeSubmit.as_view(), name="api-change-submit"),
    path("changes/<int:pk>/cancel/", views.ChangeCancel.as_view(), name="api-change-cancel"),
    path("changes/<int:pk>/approvals/", views.ChangeApprovals.as_view(), name="api-change-approvals"),
    path("changes/<int:pk>/checklist/", views.ChangeChecklist.as_view(), name="api-change-checklist"),
    path(
        "changes/<int:pk>/checklist/<int:item_id>/",
        views.ChangeChecklistItem.as_view(),
        name="api-change-checklist-item",
    ),
    path("changes/<int:pk>/comments/", views.ChangeComments.as_view(), name="api-change-comments"),
    path("changes/<int:pk>/history/", views.ChangeHistory.as_view(), name="api-change-history"),
    path("changes/<int:pk>/schedule/", views.ChangeSchedule.as_view(), name="api-change-schedule"),
    path("windows/", views.WindowList.as_view(), name="api-window-list"),
    path("windows/<int:pk>/", views.WindowDetail.as_view(), name="api-window-detail"),
    path("freezes/", views.FreezeList.as_view(), name="api-freeze-list"),
    path("freezes/<int:pk>/", views.FreezeDetail.as_view(), name="api-freeze-detail"),
    path("staging-runs/", views.StagingRunList.as_view(), name="api-staging-runs"),
    path("changes/<int:pk>/custody/", views.ChangeCustody.as_view(), name="api-change-custody"),
    path("webhooks/github/", views.GitHubWebhook.as_view(), name="api-webhook-github"),
    path("standard-changes/", views.StandardTemplateList.as_view(), name="api-standard-changes"),
    path(
        "standard-changes/<int:pk>/retire/",
        views.StandardTemplateRetire.as_view(),
        name="api-standard-change-retire",
    ),
]
