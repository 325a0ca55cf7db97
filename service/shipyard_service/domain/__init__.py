"""Domain rules of the platform.

No Flask, no subprocess, no network, no file access here: rules read and write the store
(Peewee models) and reach files and processes only through the DataStore, Artifacts and
Orchestrator interfaces they are given.
"""
