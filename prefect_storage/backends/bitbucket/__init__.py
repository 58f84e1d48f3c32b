"""Bitbucket Server and Cloud: Bitbucket storage over one transport per flavour."""

from .storage import Bitbucket
from .transport import BitbucketCloudTransport, BitbucketServerTransport, BitbucketTransport

__all__ = [
    "Bitbucket",
    "BitbucketCloudTransport",
    "BitbucketServerTransport",
    "BitbucketTransport",
]
