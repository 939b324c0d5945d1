"""Python SDK for the Ballast exchange (``pip install ballast-markets``).

The client arrives with the SDK issue; the package exists now so the workspace has its shape.
"""

__version__ = "0.1.0"
