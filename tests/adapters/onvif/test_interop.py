"""A third-party ONVIF client (onvif-zeep-async, WSDL-driven) reads the simulated cameras, with auth enforced.

If our simulator only pleased our own client, the tests of that client would prove little.
"""

from __future__ import annotations

import pytest
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFError
from zeep.exceptions import Fault

from simulators.onvif_camera import CameraFarm
from tests.fixtures.onvif import farm

__all__ = ["farm"]


async def test_zeep_client_reads_device_info_profiles_and_stream_uri(farm: CameraFarm) -> None:
    camera = farm.cameras[0]
    client = ONVIFCamera("127.0.0.1", camera.port, "admin", "admin123")
    try:
        await client.update_xaddrs()
        device = await client.create_devicemgmt_service()
        info = await device.GetDeviceInformation()
        assert info.Manufacturer == "Huxiao-Sim"
        assert info.HardwareId == camera.id
        media = await client.create_media_service()
        profiles = await media.GetProfiles()
        assert profiles[0].token == camera.profile_token
        assert profiles[0].VideoEncoderConfiguration.Resolution.Width == 640
        uri = await media.GetStreamUri(
            {
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                "ProfileToken": profiles[0].token,
            }
        )
        assert uri.Uri == f"rtsp://127.0.0.1:8554/{camera.id}"
    finally:
        await client.close()


async def test_zeep_client_with_a_wrong_password_is_refused(farm: CameraFarm) -> None:
    camera = farm.cameras[1]
    client = ONVIFCamera("127.0.0.1", camera.port, "admin", "not-the-password")
    try:
        # The first authenticated call (GetServices, inside update_xaddrs) is refused with ter:NotAuthorized.
        with pytest.raises((ONVIFError, Fault), match=r"(?i)not authorized"):
            await client.update_xaddrs()
    finally:
        await client.close()
