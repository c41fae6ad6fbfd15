"""Names the local Kafka uses: topics, group, and the principals its ACLs are written for.

Principals are the certificate CN, mapped by ``ssl.principal.mapping.rules`` as Aiven maps
its service users, so ACLs read ``User:clickstream-producer`` rather than a DN.
"""

EVENTS_TOPIC = "clickstream-events"
DEAD_LETTER_TOPIC = "clickstream-dead-letter"
CONSUMER_GROUP = "clickstream-sessionizer"
EVENTS_PARTITIONS = 6
DEAD_LETTER_PARTITIONS = 3

BROKER_PRINCIPAL = "kafka-broker"
ADMIN_PRINCIPAL = "avnadmin"
PRODUCER_PRINCIPAL = "clickstream-producer"
CONSUMER_PRINCIPAL = "clickstream-consumer"
