"""Workloads: the work only. What cpviz shows about them is measured by the lab's probes.

Kept import-free on purpose: process-pool workers import :mod:`cpviz.workloads._jobs`, and
every module imported here would be imported again in each worker.
"""
