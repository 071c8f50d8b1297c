"""Starts one emulator per test session and seeds a fresh world for every test."""

import base64
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/emulators: the shared harness
from harness import EmulatorProcess  # noqa: E402

FIXTURES = os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "tableau"))

DEFAULT_SITE = "dad65087-b08b-4603-af4e-2887b8aafc67"
MARKETING_SITE = "6b7179ba-b82b-4f0f-91ed-812074ac5da6"
ADMIN = "5de011f8-5aa9-4d5b-b991-f462c8dd6bb7"
CASSIE = "1a96d216-e9b8-497b-a82a-0b899a965e01"
P_DEFAULT = "ee8c6e70-43b6-11e6-af4f-f7b0d8e20760"
P_FINANCE = "1d0304cd-3796-429f-b815-7258370b9b74"
P_REPORTS = "4cc52973-5e3a-4d1f-a4fb-5b5f73796edf"
WB_SUPERSTORE = "6d13b0ca-043d-4d42-8c9d-3f3313ea3a00"
WB_VENTES = "3cc6cd06-89ce-4fdc-b935-5294135d6d42"
WB_PRIVATE = "a8076ca1-e9d8-495e-bae6-c684dbb55836"
WB_LOCKED = "0b3b5b2e-1111-4c4c-9d9d-000000000001"
WB_BADDATE = "0b3b5b2e-1111-4c4c-9d9d-000000000002"
WB_BIG = "0b3b5b2e-1111-4c4c-9d9d-000000000003"
FILLERS = 23
BIG_BYTES = 24 * 1024 * 1024 + 123


def world():
    fillers = [
        {"id": f"f0000000-0000-4000-8000-{i:012d}", "name": f"Filler {i:02d}", "projectId": P_REPORTS, "text": f"f{i}"}
        for i in range(FILLERS)
    ]
    return {
        "server": {"restApiVersion": "3.19"},
        "credentials": {
            "pats": {"backline": {"secret": "pat-secret", "user": "admin"}, "other": "other-secret"},
            "users": {"admin": "admin-pw", "cassie": "cassie-pw"},
        },
        "sites": [
            {
                "id": DEFAULT_SITE,
                "name": "Default",
                "contentUrl": "",
                "users": [
                    {"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"},
                    {"id": CASSIE, "name": "cassie", "siteRole": "Creator"},
                ],
                "projects": [
                    {"id": P_DEFAULT, "name": "default", "parentProjectId": None},
                    {"id": P_FINANCE, "name": "Finance", "parentProjectId": None},
                    {"id": P_REPORTS, "name": "Reports", "parentProjectId": P_FINANCE},
                ],
                "workbooks": [
                    {
                        "id": WB_SUPERSTORE,
                        "name": "Superstore",
                        "projectId": P_DEFAULT,
                        "ownerId": CASSIE,
                        "createdAt": "2016-08-03T20:34:04Z",
                        "updatedAt": "2016-08-04T17:56:41Z",
                        "description": "description for Superstore",
                        "tags": ["Safari", "Sample"],
                        "fixture": "SampleWB.twbx",
                        "revisions": [
                            {"number": 1, "publishedAt": "2016-07-26T20:34:56Z", "text": "revision one"},
                            {"number": 2, "publishedAt": "2016-07-27T20:34:56Z", "deleted": True, "publisherId": None},
                            {"number": 3, "publishedAt": "2016-07-28T20:34:56Z"},
                        ],
                    },
                    {
                        "id": WB_VENTES,
                        "name": "Ventes, Q1 été",
                        "projectId": P_FINANCE,
                        "ownerId": ADMIN,
                        "disposition": "rfc5987",
                        "content": base64.b64encode(b"PK\x03\x04ventes").decode(),
                    },
                    {"id": WB_PRIVATE, "name": "Private", "projectId": None, "ownerId": CASSIE, "text": "mine"},
                    {
                        "id": WB_LOCKED,
                        "name": "Locked",
                        "projectId": P_DEFAULT,
                        "extract_forbidden": True,
                        "fixture": "SampleWB.twbx",
                        "no_extract": {"fixture": "RESTAPISample.twb", "twb": True},
                    },
                    {
                        "id": WB_BADDATE,
                        "name": "Bad Date",
                        "projectId": P_DEFAULT,
                        "createdAt": "2016-06-30T00:00:00Z",
                        "updatedAt": "2016-06-31T00:00:00Z",
                        "text": "x",
                    },
                    {"id": WB_BIG, "name": "Big", "projectId": P_DEFAULT, "generate": {"size": BIG_BYTES, "seed": 7}},
                ]
                + fillers,
            },
            {
                "id": MARKETING_SITE,
                "name": "Marketing",
                "contentUrl": "marketing",
                "users": [{"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
                "projects": [{"id": "9a8b7c6d-0000-4000-8000-000000000001", "name": "default"}],
            },
        ],
    }


class Emulator(EmulatorProcess):
    def state(self):
        return self.control("state")


@pytest.fixture(scope="session")
def emulator_process():
    emulator = Emulator("tableau", "--fixtures", FIXTURES)
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(emulator_process):
    emulator_process.reset(world())
    return emulator_process
