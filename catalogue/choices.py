from django.db import models


class Phase(models.TextChoices):
    PRE = "pre", "Pre-deployment"
    BEFORE = "before", "Before deployment"
    DURING = "during", "During deployment"
    AFTER = "after", "After deployment"
