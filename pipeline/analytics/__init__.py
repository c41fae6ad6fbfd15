"""Reporting over the stored clickstream: the queries behind `pipeline summary`."""
