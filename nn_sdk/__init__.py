"""nn_sdk: the async Python client of nn-server.

::

    import asyncio
    from nn_sdk import NNClient

    async def main() -> None:
        async with NNClient("http://127.0.0.1:5000") as client:
            print(await client.classify("images/7.png"))

    asyncio.run(main())

Every error the SDK raises is an :class:`NNError`; see ``nn_sdk._exceptions`` for the tree.
"""

from nn_sdk._address import Address, parse_address
from nn_sdk._client import NNClient, ProgressCallback
from nn_sdk._config import (
    DEFAULT_NETWORK,
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_USER,
    Timeout,
    VerifyTypes,
    default_base_url,
    default_host,
    local_address,
)
from nn_sdk._exceptions import (
    AddressError,
    APIError,
    AuthenticationError,
    BadRequest,
    ConnectError,
    InvalidArgument,
    LocalFileError,
    NNError,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    ServerError,
    TimeoutException,
    TrainingInProgress,
    TransportError,
    UnsupportedMedia,
)
from nn_sdk._images import SUPPORTED_FORMATS, ImageInput, image_format
from nn_sdk._models import (
    Classification,
    EpochResult,
    LabelProbability,
    NetworkInfo,
    NetworkSummary,
    TrainingProgress,
    TrainingStarted,
    TrainingStatus,
    Version,
    Versions,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_NETWORK",
    "DEFAULT_PASSWORD",
    "DEFAULT_PORT",
    "DEFAULT_USER",
    "SUPPORTED_FORMATS",
    "APIError",
    "Address",
    "AddressError",
    "AuthenticationError",
    "BadRequest",
    "Classification",
    "ConnectError",
    "EpochResult",
    "ImageInput",
    "InvalidArgument",
    "LabelProbability",
    "LocalFileError",
    "NNClient",
    "NNError",
    "NetworkInfo",
    "NetworkSummary",
    "NotFound",
    "PayloadTooLarge",
    "ProgressCallback",
    "ProtocolError",
    "ServerError",
    "Timeout",
    "TimeoutException",
    "TrainingInProgress",
    "TrainingProgress",
    "TrainingStarted",
    "TrainingStatus",
    "TransportError",
    "UnsupportedMedia",
    "VerifyTypes",
    "Version",
    "Versions",
    "__version__",
    "default_base_url",
    "default_host",
    "image_format",
    "local_address",
    "parse_address",
]
