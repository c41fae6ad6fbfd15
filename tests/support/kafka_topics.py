"""Per-test Kafka topics that carry exactly the production ACLs, created with the admin certificate."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AclBinding, AclBindingFilter, AdminClient, NewTopic

from devstack.kafka import acl_bindings, ensure_acls, wait_for_topics
from pipeline.config.settings import Settings


@dataclass(frozen=True)
class IsolatedTopics:
    events: str
    dead_letter: str
    group: str


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka.client_config("admin"))


def create_isolated_topics(settings: Settings, *, suffix: str, partitions: int = 6) -> IsolatedTopics:
    topics = IsolatedTopics(
        events=f"{settings.kafka.events_topic}-t{suffix}",
        dead_letter=f"{settings.kafka.dead_letter_topic}-t{suffix}",
        group=f"{settings.kafka.consumer_group}-t{suffix}",
    )
    admin = admin_client(settings)
    futures = admin.create_topics(
        [NewTopic(topics.events, partitions, 1), NewTopic(topics.dead_letter, 1, 1)], operation_timeout=30
    )
    for future in futures.values():
        future.result()
    wait_for_topics(admin, [topics.events, topics.dead_letter])
    ensure_acls(admin, acl_bindings(topics.events, topics.dead_letter, topics.group))
    return topics


def delete_topics(settings: Settings, topics: IsolatedTopics) -> None:
    """Remove the topics and the ACLs that were made for them."""
    admin = admin_client(settings)
    for future in admin.delete_topics([topics.events, topics.dead_letter], operation_timeout=30).values():
        future.result()
    bindings = acl_bindings(topics.events, topics.dead_letter, topics.group)
    for future in admin.delete_acls([_as_filter(b) for b in bindings], request_timeout=30).values():
        future.result()


def _as_filter(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype, binding.name, binding.resource_pattern_type, binding.principal, binding.host,
        binding.operation, binding.permission_type,
    )
