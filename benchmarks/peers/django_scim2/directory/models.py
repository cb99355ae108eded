"""The user and group models django-scim2's standard adapters (SCIMUser, SCIMGroup) expect:
Django's own user with the SCIM mixin's columns (id, externalId, userName), and a group with
the group mixin's; users reach their groups as `scim_groups`, groups their users as
`user_set`."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class Group(AbstractSCIMGroupMixin):
    name = models.CharField(max_length=150, unique=True)

    def __str__(self) -> str:
        return str(self.name)


class User(AbstractSCIMUserMixin, AbstractUser):
    # A field where the mixin has a property: the adapters read `scim_groups.all()`.
    scim_groups = models.ManyToManyField(Group, related_name="user_set", blank=True)
