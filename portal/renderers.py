"""How form widgets are drawn."""

from django.forms.renderers import DjangoTemplates, Jinja2
from django.template import TemplateDoesNotExist
from django.utils.functional import cached_property


class FormRenderer(Jinja2):
    """Django's own widgets through their Jinja2 templates (the same HTML, a fraction of the time
    of rendering each widget and option as a Django template); a widget that has only a Django
    template (the admin's own, such as its related-object wrapper) through that one."""

    @cached_property
    def django_templates(self) -> DjangoTemplates:
        return DjangoTemplates()

    def get_template(self, template_name):
        try:
            return super().get_template(template_name)
        except TemplateDoesNotExist:
            return self.django_templates.get_template(template_name)
