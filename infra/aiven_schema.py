"""The few facts of Aiven's API schema the program relies on, pinned to one schema version.

Aiven publishes the machine-readable schema of every service's user config (keys, types,
enums, deprecation flags) as the Go module ``github.com/aiven/go-api-schemas``, file
``pkg/dist/service_types.yml``. The provider does not check versions before calling the
API, so a retired version fails only in the middle of ``pulumi up``; the program checks
the versions itself at preview time, against the enums below.

:data:`SCHEMA_VERSION` is the one place the repository names the schema version. The
tests download that version of the module and hold every enum here equal to the
non-deprecated values it lists, validate every user config the program sends against
it, and report when a newer published schema deprecates one of the defaults.
"""

from __future__ import annotations

from typing import Final

#: Version of ``github.com/aiven/go-api-schemas`` the enums below were taken from.
SCHEMA_VERSION: Final = "v1.235.0"
SCHEMA_MODULE: Final = "github.com/aiven/go-api-schemas"

#: Non-deprecated values of ``kafka.properties.kafka_version`` in that schema.
KAFKA_VERSIONS: Final = ("3.9", "4.2", "4.3")
#: Non-deprecated values of ``pg.properties.pg_version``.
POSTGRES_VERSIONS: Final = ("15", "16", "17", "18")
#: Non-deprecated values of ``opensearch.properties.opensearch_version``.
OPENSEARCH_VERSIONS: Final = ("2.19", "3.3", "3.6", "3.8")

#: Which user-config key of which service type each embedded enum mirrors.
EMBEDDED_ENUMS: Final = {
    ("kafka", "kafka_version"): KAFKA_VERSIONS,
    ("pg", "pg_version"): POSTGRES_VERSIONS,
    ("opensearch", "opensearch_version"): OPENSEARCH_VERSIONS,
}
