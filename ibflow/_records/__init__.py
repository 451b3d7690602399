"""The records: frozen dataclasses and enums every layer above shares.

Leaves of ibflow: they import nothing of the client but the exception tree, the error-code
table and the validation helpers beside it.
"""
