from django.urls import path

from changes import views

urlpatterns = [
    path("", views.change_list, name="change-list"),
    path("new/", views.change_new, name="change-new"),
    path("<int:pk>/", views.change_detail, name="change-detail"),
    path("<int:pk>/edit/", views.change_edit, name="change-edit"),
    path("<int:pk>/submit/", views.change_submit, name="change-submit"),
    path("<int:pk>/cancel/", views.change_cancel, name="change-cancel"),
    path("<int:pk>/unschedule/", views.change_unschedule, name="change-unschedule"),
    path("<int:pk>/take-next-slot/", views.change_take_next_slot, name="change-take-next-slot"),
    path("<int:pk>/decide/", views.change_decide, name="change-decide"),
    path("<int:pk>/checklist/<int:item_id>/", views.checklist_tick, name="change-checklist-tick"),
    path("<int:pk>/comments/", views.comment_add, name="change-comment"),
]
