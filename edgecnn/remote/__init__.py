"""Reaching other machines: the OpenSSH transport the search's ``ssh://`` target and ``deploy`` share.

Standard library only (the system's ``ssh`` client does the work); it sits under the stage
packages that use it (``search``, ``deploy``) so neither imports the other.
"""
