"""OpenSearch Dashboards as code: the saved objects the pipeline ships and the client that imports them."""
