from django.urls import path

from changes import calendar_views, views

urlpatterns = [
    path("changes/", views.change_list, name="change-list"),
    path("changes/new/", views.change_new, name="change-new"),
    path("changes/<int:pk>/", views.change_detail, name="change-detail"),
    path("changes/<int:pk>/edit/", views.change_edit, name="change-edit"),
    path("changes/<int:pk>/submit/", views.change_submit, name="change-submit"),
    path("changes/<int:pk>/cancel/", views.change_cancel, name="change-cancel"),
    path("changes/<int:pk>/unschedule/", views.change_unschedule, name="change-unschedule"),
    path("changes/<int:pk>/take-next-slot/", views.change_take_next_slot, name="change-take-next-slot"),
    path("changes/<int:pk>/decide/", views.change_decide, name="change-decide"),
    path("changes/<int:pk>/checklist/<int:item_id>/", views.checklist_tick, name="change-checklist-tick"),
    path("changes/<int:pk>/comments/", views.comment_add, name="change-comment"),
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    path("calendar/<slug:name>.ics", calendar_views.calendar_feed, name="calendar-feed"),
]
