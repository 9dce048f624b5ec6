"""The ``aslmig`` command line."""
