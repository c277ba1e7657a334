"""Deterministic generation of an Iterable project's data, plus the ground-truth store."""

from __future__ import annotations

import bisect
import json
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from . import timefmt
from .config import DataSpec
from .stored import Stored
from .streams import EventStream

DAY = 86400.0

EVENT_TYPES: tuple[str, ...] = (
    "emailSend", "emailOpen", "emailClick", "hostedUnsubscribeClick", "emailComplaint", "emailBounce",
    "emailSendSkip", "emailSubscribe", "emailUnSubscribe",
    "pushSend", "pushOpen", "pushUninstall", "pushBounce", "pushSendSkip",
    "inAppSend", "inAppOpen", "inAppClick", "inAppClose", "inAppDelete", "inAppDelivery", "inAppSendSkip",
    "inAppRecall",
    "inboxSession", "inboxMessageImpression",
    "smsSend", "smsBounce", "smsClick", "smsReceived", "smsSendSkip", "smsUsageInfo",
    "webPushSend", "webPushClick", "webPushSendSkip",
    "rcsSend", "rcsSendSkip",
    "purchase", "customEvent",
    "embeddedSend", "embeddedSendSkip", "embeddedClick", "embeddedReceived", "embeddedImpression",
    "embeddedSession",
    "unknownSession", "journeyExit",
    "whatsAppBounce", "whatsAppClick", "whatsAppReceived", "whatsAppSeen", "whatsAppSend", "whatsAppSendSkip",
    "whatsAppUsageInfo",
)  # fmt: skip
DATA_TYPES: tuple[str, ...] = ("user", *EVENT_TYPES)
# Iterable matches dataTypeName case-insensitively (peers send `emailUnsubscribe`).
_DATA_TYPE_BY_LOWER = {name.lower(): name for name in DATA_TYPES}

CAMPAIGN_STATES = (
    "Draft",
    "Ready",
    "Scheduled",
    "Running",
    "Finished",
    "Starting",
    "Aborted",
    "Recurring",
    "Archived",
    "Recalling",
    "Recalled",
)
_LAUNCHED_STATES = {"Starting", "Running", "Finished", "Aborted", "Recalling", "Recalled", "Recurring"}
_ENDED_STATES = {"Finished", "Aborted", "Recalled"}
TEMPLATE_TYPES = ("Base", "Blast", "Triggered", "Workflow")
TEMPLATE_MEDIUMS = ("Email", "Push", "InApp", "SMS")
# Mediums projects send that the templates listing's `messageMedium` filter cannot select.
OTHER_TEMPLATE_MEDIUMS = ("WebPush", "Embedded", "WhatsApp")
CAMPAIGN_MEDIUMS = ("Email", "Email", "Email", "Push", "SMS", "WebPush", "InApp")

_CHANNEL_PRESETS = (
    ("Marketing Email", "Marketing", "Email"),
    ("Transactional Email", "Transactional", "Email"),
    ("Marketing Push", "Marketing", "Push"),
    ("Marketing SMS", "Marketing", "SMS"),
    ("Web Push", "Marketing", "WebPush"),
    ("In-App", "Marketing", "InApp"),
)
_LIST_TYPES = ("Standard", "Dynamic", "Suppression", "Standard", "Internal")
_FIRST = ("ana", "ben", "chloe", "dev", "elif", "farid", "gina", "hugo", "ines", "jon", "kaia", "liam")
_LAST = ("smith", "garcia", "khan", "novak", "okafor", "rossi", "tanaka", "weber", "silva", "ivanova")
_DOMAINS = ("example.com", "mail.test", "corp.example", "gmail.test")
_EMPLOYEES = ("ops@acme.test", "marketing@acme.test", "lifecycle@acme.test")
_CUSTOM_EVENTS = ("appLaunch", "addToCart", "viewedProduct", "searched", "trialStarted")

# Metric columns in the order Iterable's CSV uses; which ones apply depends on the medium.
_METRICS_BY_MEDIUM: dict[str, tuple[str, ...]] = {
    "Email": (
        "Total Email Sends",
        "Total Emails Delivered",
        "Unique Email Opens",
        "Total Email Opens",
        "Total Email Opens (filtered)",
        "Unique Email Clicks",
        "Total Emails Clicked",
        "Total Emails Bounced",
        "Total Complaints",
        "Total Unsubscribes",
        "Revenue / M (Email)",
    ),
    "Push": (
        "Total Pushes Sent",
        "Total Pushes Delivered",
        "Total Push Opens",
        "Unique Push Opens",
        "Total Pushes Bounced",
        "Total Unsubscribes",
    ),
    "WebPush": ("Total Web Pushes Sent", "Total Web Push Clicks", "Unique Web Push Clicks"),
    "SMS": (
        "Total SMS Sent",
        "Total SMS Delivered",
        "Total SMS Clicks",
        "Total SMS Bounced",
        "Total Unsubscribes",
    ),
    "InApp": ("Total In-app Sent", "Total In-app Opens", "Total In-app Clicks", "Total In-app Closes"),
}
_SHARED_METRICS = ("Revenue", "Total Purchases", "Average Order Value", "Sum of Custom Conversions")
METRIC_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys([c for cols in _METRICS_BY_MEDIUM.values() for c in cols] + list(_SHARED_METRICS))
)
_DECIMAL_METRICS = {"Revenue", "Revenue / M (Email)", "Average Order Value", "Sum of Custom Conversions"}


def canonical_data_type(name: str) -> str | None:
    return _DATA_TYPE_BY_LOWER.get(name.lower())


def medium_of_event(data_type: str) -> str:
    for prefix, medium in (
        ("webPush", "WebPush"),
        ("email", "Email"),
        ("hostedUnsub", "Email"),
        ("push", "Push"),
        ("inApp", "InApp"),
        ("inbox", "InApp"),
        ("sms", "SMS"),
    ):
        if data_type.startswith(prefix):
            return medium
    return "Email"


class LightUsers(Sequence[Stored]):
    """Users held as their sorted `profileUpdatedAt` instants alone (whole seconds, 8 bytes each);
    each record (email, itblUserId, profileUpdatedAt) is rendered when read. Read-only."""

    def __init__(self, cursors: list[float], list_field: str) -> None:
        self.cursors = array("d", sorted(float(int(c)) for c in cursors))
        self.list_field = list_field

    def __len__(self) -> int:
        return len(self.cursors)

    @overload
    def __getitem__(self, index: int) -> Stored: ...
    @overload
    def __getitem__(self, index: slice) -> list[Stored]: ...
    def __getitem__(self, index: int | slice) -> Stored | list[Stored]:
        if isinstance(index, slice):
            return [self._user(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._user(index)

    def export_lines(self, start: float | None, end: float | None, at: float) -> list[bytes]:
        """The JSON lines of the users updated in [start, end) and visible at `at`, without
        building a record or a Stored for each."""
        lo = 0 if start is None else bisect.bisect_left(self.cursors, start)
        hi = len(self) if end is None else bisect.bisect_left(self.cursors, end)
        hi = min(hi, bisect.bisect_right(self.cursors, at))
        # Formatted by hand: orjson's output keeps a 4 KB buffer per line, 8 GB for 2M users.
        return [
            f'{{"email":"user{i}@light.test","itblUserId":"itbl{i}","profileUpdatedAt":"{timefmt.seconds_str(int(self.cursors[i]))} +00:00","{self.list_field}":[]}}'.encode()
            for i in range(lo, max(lo, hi))
        ]

    def _record(self, i: int) -> dict[str, Any]:
        return {
            "email": f"user{i}@light.test",
            "itblUserId": f"itbl{i}",
            "profileUpdatedAt": timefmt.seconds_str(int(self.cursors[i])) + " +00:00",
            self.list_field: [],
        }

    def _user(self, i: int) -> Stored:
        cursor = self.cursors[i]
        return Stored(self._record(i), cursor, cursor)


@dataclass
class Member:
    email: str | None
    user_id: str | None


@dataclass
class CampaignActivity:
    """Lifetime metric totals, spread evenly over [start, end) for windowed queries."""

    medium: str
    start: float
    end: float
    totals: dict[str, float]


@dataclass
class Dataset:
    now: float
    project_type: str
    channels: list[dict[str, Any]] = field(default_factory=list)
    message_types: list[dict[str, Any]] = field(default_factory=list)
    lists: list[dict[str, Any]] = field(default_factory=list)
    members: dict[int, list[Member]] = field(default_factory=dict)
    templates: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    metadata_tables: list[dict[str, Any]] = field(default_factory=list)
    campaigns: dict[int, dict[str, Any]] = field(default_factory=dict)
    activity: dict[int, CampaignActivity] = field(default_factory=dict)
    users: list[Stored] | LightUsers = field(default_factory=list)
    events: dict[str, list[Stored] | EventStream] = field(default_factory=dict)
    journeys: list[dict[str, Any]] = field(default_factory=list)
    snippets: list[dict[str, Any]] = field(default_factory=list)
    catalogs: dict[str, Sequence[dict[str, Any]]] = field(default_factory=dict)
    user_fields: dict[str, str] = field(default_factory=dict)
    experiments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def list_field(self) -> str:
        return "emailListIds" if self.project_type == "Email-based" else "userListIds"

    def member_line(self, member: Member, prefer_user_id: bool) -> str:
        if self.project_type == "Email-based":
            return member.email or ""
        if self.project_type == "UserID-based":
            return member.user_id or ""
        if prefer_user_id and member.user_id:
            return member.user_id
        return member.email or member.user_id or ""

    def is_launched(self, campaign: dict[str, Any]) -> bool:
        return campaign["id"] in self.activity


def metric_value_strings(activity: CampaignActivity, start: float, end: float | None) -> dict[str, str]:
    """Metric cells for a campaign over [start, end): totals scaled by the overlap with its activity."""
    stop = activity.end if end is None else min(end, activity.end)
    span = max(activity.end - activity.start, 1.0)
    fraction = max(0.0, stop - max(start, activity.start)) / span
    values = {name: total * fraction for name, total in activity.totals.items()}
    if "Average Order Value" in values:
        purchases = round(values.get("Total Purchases", 0.0))
        values["Average Order Value"] = values["Revenue"] / purchases if purchases else 0.0
    sends_key = "Total Email Sends"
    if "Revenue / M (Email)" in values:
        sends = round(values.get(sends_key, 0.0))
        values["Revenue / M (Email)"] = values["Revenue"] / sends * 1000 if sends else 0.0
    return {
        name: str(round(v, 2)) if name in _DECIMAL_METRICS else str(int(round(v)))
        for name, v in values.items()
    }


class Generator:
    """Builds a Dataset. Every random choice comes from one seeded RNG, in a fixed order."""

    def __init__(self, spec: DataSpec, project_type: str, seed: int, now: float, time_scale: float) -> None:
        self.spec = spec
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - spec.history_days * DAY
        self.time_scale = time_scale
        self.ds = Dataset(now=now, project_type=project_type)
        self._message_ids: list[tuple[str, int, int]] = []  # (messageId, campaignId, templateId)
        self._launched_by_medium: dict[str, list[dict[str, Any]]] = {}

    # -- helpers -----------------------------------------------------------------------------------
    def _t(self, lo: float | None = None, hi: float | None = None) -> float:
        lo = self.start if lo is None else lo
        hi = self.now if hi is None else hi
        return self.rng.uniform(lo, max(lo, hi - 1.0))

    def _hex(self, n: int = 32) -> str:
        return f"{self.rng.getrandbits(n * 4):0{n}x}"

    def _visible_at(self, cursor: float) -> float:
        if self.rng.random() < self.spec.late_fraction:
            return cursor + self.rng.uniform(0.1, 1.0) * self.spec.late_delay_s * self.time_scale
        return cursor

    def generate(self) -> Dataset:
        self._channels()
        self._message_types()
        self._lists()
        self._templates()
        self._metadata_tables()
        self._users()
        self._memberships()
        self._campaigns()
        self._events()
        self._journeys()
        self._snippets()
        self._catalogs()
        self._experiments()
        users = self.ds.users[:1000] if isinstance(self.ds.users, LightUsers) else self.ds.users
        self.ds.user_fields = infer_user_fields([u.data for u in users])
        return self.ds

    # -- small resources ---------------------------------------------------------------------------
    def _channels(self) -> None:
        for i in range(self.spec.channels):
            name, ctype, medium = _CHANNEL_PRESETS[i % len(_CHANNEL_PRESETS)]
            suffix = "" if i < len(_CHANNEL_PRESETS) else f" {i}"
            self.ds.channels.append(
                {"id": 39581 + i * 7, "name": name + suffix, "channelType": ctype, "messageMedium": medium}
            )

    def _message_types(self) -> None:
        for i in range(self.spec.message_types):
            channel = self.ds.channels[i % len(self.ds.channels)] if self.ds.channels else None
            created = self._t()
            record: dict[str, Any] = {
                "id": 47257 + i * 3,
                "name": f"{channel['name'] if channel else 'Misc'} Type {i}",
                "channelId": channel["id"] if channel else 0,
                "createdAt": timefmt.epoch_ms(created),
                "updatedAt": timefmt.epoch_ms(self._t(created)),
                "subscriptionPolicy": self.rng.choice(("OptIn", "OptOut")),
            }
            if self.rng.random() < 0.5:
                record["frequencyCap"] = {"days": self.rng.randint(1, 7), "messages": self.rng.randint(1, 5)}
            if self.rng.random() < 0.3:
                record["rateLimitPerMinute"] = self.rng.choice((100, 1000, 5000))
            self.ds.message_types.append(record)

    def _lists(self) -> None:
        for i in range(self.spec.lists):
            list_type = _LIST_TYPES[i % len(_LIST_TYPES)]
            record: dict[str, Any] = {
                "id": 949814 + i * 11,
                "name": f"{list_type} list {i}",
                "createdAt": timefmt.epoch_ms(self._t()),
                "listType": list_type,
            }
            if self.rng.random() < 0.6:
                record["description"] = f"Audience #{i} imported from CRM"
            if list_type == "Suppression":
                record["isGlobalSuppressionEnabled"] = self.rng.random() < 0.5
            self.ds.lists.append(record)

    def _templates(self) -> None:
        next_id = 1_000_000
        lo, hi = self.spec.templates_per_combo
        for ttype in TEMPLATE_TYPES:
            for medium in TEMPLATE_MEDIUMS:
                combo: list[dict[str, Any]] = []
                for _ in range(self.rng.randint(lo, hi)):
                    created = self._t()
                    record: dict[str, Any] = {
                        "templateId": next_id,
                        "name": f"{ttype} {medium} template {next_id}",
                        "createdAt": timefmt.epoch_ms(created),
                        "updatedAt": timefmt.epoch_ms(self._t(created)),
                        "creatorUserId": self.rng.choice(_EMPLOYEES),
                        "messageTypeId": self.rng.choice(self.ds.message_types)["id"]
                        if self.ds.message_types
                        else 0,
                    }
                    if self.rng.random() < 0.2:
                        record["clientTemplateId"] = f"client-{next_id}"
                    combo.append(record)
                    next_id += self.rng.randint(1, 40)
                self.ds.templates[(ttype, medium)] = combo
        if self.spec.other_medium_templates:
            self._other_medium_templates(next_id)

    def _other_medium_templates(self, next_id: int) -> None:
        for ttype in TEMPLATE_TYPES:
            for medium in OTHER_TEMPLATE_MEDIUMS:
                combo = []
                for _ in range(self.spec.other_medium_templates):
                    created = self._t()
                    combo.append(
                        {
                            "templateId": next_id,
                            "name": f"{ttype} {medium} template {next_id}",
                            "createdAt": timefmt.epoch_ms(created),
                            "updatedAt": timefmt.epoch_ms(created),
                            "creatorUserId": _EMPLOYEES[0],
                            "messageTypeId": 0,
                        }
                    )
                    next_id += 7
                self.ds.templates[(ttype, medium)] = combo

    def _metadata_tables(self) -> None:
        names = ("products", "stores", "coupons", "regions", "articles", "faq")
        for i in range(self.spec.metadata_tables):
            name = names[i % len(names)] + ("" if i < len(names) else f"_{i}")
            self.ds.metadata_tables.append({"name": name})

    # -- users and lists ---------------------------------------------------------------------------
    def _identity(self, i: int) -> tuple[str | None, str | None, str | None]:
        """(email, userId, itblUserId) following the project type's uniqueness rules (§4)."""
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        email = f"{first}.{last}{i}@{self.rng.choice(_DOMAINS)}"
        user_id = f"u{100000 + i}"
        ptype = self.ds.project_type
        if ptype == "Email-based":
            if self.rng.random() < 0.03:
                email = f"{self._hex(16)}@placeholder.email"
            # userId is neither required nor unique in Email-based projects.
            uid = (user_id if self.rng.random() < 0.8 else "u100000") if self.rng.random() < 0.4 else None
            return email, uid, None
        itbl = self._hex(32)
        if ptype == "UserID-based":
            return (email if self.rng.random() < 0.6 else None), user_id, itbl
        roll = self.rng.random()
        if roll < 0.6:
            return email, user_id, itbl
        return (email, None, itbl) if roll < 0.8 else (None, user_id, itbl)

    def build_user(self, i: int) -> Stored:
        email, user_id, itbl = self._identity(i)
        signup = self._t()
        updated_str, updated = timefmt.varied_str(self._t(signup), self.rng)
        record: dict[str, Any] = {}
        if email is not None:
            record["email"] = email
        if user_id is not None:
            record["userId"] = user_id
        if itbl is not None:
            record["itblUserId"] = itbl
        record["signupDate"] = timefmt.iterable_str(signup)
        record["signupSource"] = self.rng.choice(("API", "Import", "ListAPI", "WebForm"))
        record["profileUpdatedAt"] = updated_str
        record[self.ds.list_field] = []
        record["subscribedMessageTypeIds"] = self._sample_ids(self.ds.message_types, 0.5)
        record["unsubscribedChannelIds"] = self._sample_ids(self.ds.channels, 0.1)
        record["unsubscribedMessageTypeIds"] = self._sample_ids(self.ds.message_types, 0.1)
        if self.rng.random() < 0.4:
            record["phoneNumber"] = f"+1555{self.rng.randint(1000000, 9999999)}"
            record["itblInternal.phoneCountry"] = "US"
        if self.rng.random() < 0.2:
            record["devices"] = [
                {
                    "token": self._hex(64),
                    "platform": self.rng.choice(("APNS", "GCM")),
                    "applicationName": "acme-app",
                    "endpointEnabled": True,
                }
            ]
        record["locale"] = self.rng.choice(("en_US", "de_DE", "fr_FR", "pt_BR"))
        record["timeZone"] = self.rng.choice(("America/New_York", "Europe/Berlin", "UTC"))
        record["firstName"] = email.split(".")[0].title() if email else "Anon"
        record["plan"] = self.rng.choice(("free", "pro", "enterprise"))
        record["score"] = self.rng.randint(0, 100)
        record["ltv"] = round(self.rng.uniform(0, 500), 2)
        record["vip"] = self.rng.random() < 0.1
        if self.rng.random() < 0.5:
            record["lastPurchaseDate"] = timefmt.to_dt(self._t()).strftime(
                "%Y-%m-%d"
            )  # date-only custom field
        if email:
            record["itblInternal.emailDomain"] = email.split("@")[1]
        record["itblInternal.documentCreatedAt"] = timefmt.iterable_str(signup)
        record["itblInternal.documentUpdatedAt"] = updated_str
        if email and email.endswith("@placeholder.email"):
            record["itblInternal.isUnknownUser"] = True
        if self.rng.random() < 0.3:
            record["itblDS.brandAffinityLabel"] = self.rng.choice(
                ("Loyal", "Positive", "Neutral", "Negative")
            )
        return Stored(record, updated, self._visible_at(updated))

    def _sample_ids(self, items: list[dict[str, Any]], p: float) -> list[int]:
        return [item["id"] for item in items if self.rng.random() < p]

    def _users(self) -> None:
        if self.spec.light_users:
            self.ds.users = LightUsers([self._t() for _ in range(self.spec.users)], self.ds.list_field)
            return
        self.ds.users = [self.build_user(i) for i in range(self.spec.users)]

    def _memberships(self) -> None:
        lo, hi = self.spec.list_members
        for lst in self.ds.lists:
            k = min(self.rng.randint(lo, hi), len(self.ds.users))
            chosen = self.rng.sample(self.ds.users, k)
            self.ds.members[lst["id"]] = [Member(u.data.get("email"), u.data.get("userId")) for u in chosen]
            if lst["listType"] == "Standard":
                for user in chosen:
                    user.data[self.ds.list_field].append(lst["id"])

    # -- campaigns ---------------------------------------------------------------------------------
    def _campaign_states(self) -> list[str]:
        n = self.spec.campaigns
        states = list(CAMPAIGN_STATES[:n])
        weighted = (
            ("Finished",) * 5 + ("Running",) * 3 + ("Draft", "Archived", "Aborted", "Ready", "Scheduled")
        )
        states += [self.rng.choice(weighted) for _ in range(n - len(states))]
        self.rng.shuffle(states)
        return states

    def _campaigns(self) -> None:
        recurring_parents: list[int] = []
        for i, state in enumerate(self._campaign_states()):
            cid = 5967603 + i * 13
            campaign = self._campaign(cid, state, recurring_parents)
            if state == "Recurring":
                recurring_parents.append(cid)
            self.ds.campaigns[cid] = campaign

    def _campaign(self, cid: int, state: str, recurring_parents: list[int]) -> dict[str, Any]:
        medium = self.rng.choice(CAMPAIGN_MEDIUMS)
        ctype = "Triggered" if state == "Running" and self.rng.random() < 0.5 else "Blast"
        created = self._t(hi=self.now - 3600)
        c: dict[str, Any] = {
            "id": cid,
            "name": f"{medium} {ctype.lower()} campaign {cid}",
            "type": ctype,
            "campaignState": state,
            "messageMedium": medium,
        }
        start_at, ended_at = self._campaign_times(state, created)
        touched = max(t for t in (created, start_at, ended_at) if t is not None and t <= self.now)
        c["createdAt"] = timefmt.epoch_ms(created)
        c["updatedAt"] = timefmt.epoch_ms(self._t(touched, min(self.now, touched + 2 * DAY)))
        if start_at is not None:
            c["startAt"] = timefmt.epoch_ms(start_at)
        if ended_at is not None:
            c["endedAt"] = timefmt.epoch_ms(ended_at)
        c["createdByUserId"] = self.rng.choice(_EMPLOYEES)
        if self.rng.random() < 0.7:
            c["updatedByUserId"] = self.rng.choice(_EMPLOYEES)
        templates = self.ds.templates.get((ctype, medium if medium != "WebPush" else "Push"), [])
        c["templateId"] = self.rng.choice(templates)["templateId"] if templates else 2_000_000 + cid % 9973
        c["listIds"] = (
            [lst["id"] for lst in self.ds.lists if self.rng.random() < 0.3] if ctype == "Blast" else []
        )
        c["suppressionListIds"] = [
            lst["id"] for lst in self.ds.lists if lst["listType"] == "Suppression" and self.rng.random() < 0.5
        ]
        c["labels"] = self.rng.sample(
            ["promo", "newsletter", "winback", "onboarding"], self.rng.randint(0, 2)
        )
        if start_at is not None and start_at <= self.now and ctype == "Blast":
            c["sendSize"] = self.rng.randint(10, 50_000)
        if recurring_parents and state in ("Finished", "Running") and self.rng.random() < 0.3:
            c["recurringCampaignId"] = self.rng.choice(recurring_parents)
        if ctype == "Triggered" and self.rng.random() < 0.6:
            c["workflowId"] = self.rng.randint(10_000, 99_999)
        if start_at is not None and start_at <= self.now and state in _LAUNCHED_STATES | {"Archived"}:
            self.ds.activity[cid] = self._activity(medium, start_at, ended_at or self.now)
        return c

    def _campaign_times(self, state: str, created: float) -> tuple[float | None, float | None]:
        if state in ("Draft", "Ready"):
            return None, None
        if state == "Scheduled":
            return self.now + self.rng.uniform(3600, 7 * DAY), None
        if state == "Starting":
            return self.now - self.rng.uniform(10, 600), None
        if state == "Archived" and self.rng.random() < 0.5:
            return None, None
        start = self._t(created, self.now - 1800)
        if state in _ENDED_STATES or state == "Archived":
            # Mix of recently ended and long-ago ended campaigns.
            if self.rng.random() < 0.5:
                ended = self._t(max(start, self.now - 2 * DAY), self.now - 60)
            else:
                ended = self._t(start, min(self.now - 60, start + 3 * DAY))
            return start, max(start + 60, ended)
        return start, None

    def _activity(self, medium: str, start: float, end: float) -> CampaignActivity:
        sends = float(self.rng.randint(50, 20_000))
        totals: dict[str, float] = {}
        for name in _METRICS_BY_MEDIUM.get(medium, ()):
            lowered = name.lower()
            if "sen" in lowered:
                totals[name] = sends
            elif "deliver" in lowered:
                totals[name] = sends * self.rng.uniform(0.9, 0.99)
            elif "open" in lowered:
                totals[name] = sends * self.rng.uniform(0.1, 0.5)
            elif "click" in lowered:
                totals[name] = sends * self.rng.uniform(0.01, 0.1)
            else:
                totals[name] = sends * self.rng.uniform(0.0, 0.02)
        purchases = float(self.rng.randint(0, int(sends * 0.02) + 1))
        totals["Total Purchases"] = purchases
        totals["Revenue"] = purchases * self.rng.uniform(5, 120)
        totals["Average Order Value"] = 0.0
        totals["Sum of Custom Conversions"] = float(self.rng.randint(0, 40))
        return CampaignActivity(medium, start, end=max(end, start + 1), totals=totals)

    # -- events ------------------------------------------------------------------------------------
    def _event_time(self) -> float:
        u = self.rng.random() ** (1.0 + self.spec.event_skew)
        return self.now - 1.0 - u * (self.now - 1.0 - self.start)

    def _events(self) -> None:
        events: dict[str, list[Stored]] = {name: [] for name in EVENT_TYPES}
        # Sends first so opens/clicks can refer to their messageIds.
        ordered = sorted(self.spec.events.items(), key=lambda kv: (not kv[0].endswith("Send"), kv[0]))
        for name, count in ordered:
            data_type = canonical_data_type(name)
            if data_type is None or data_type == "user":
                raise ValueError(f"unknown event data type {name!r}")
            for _ in range(count):
                cursor = self._event_time()
                user = self.rng.choice(self.ds.users).data if self.ds.users else {}
                record, exact = self.build_event(data_type, user, cursor)
                events[data_type].append(Stored(record, exact, self._visible_at(exact)))
        self.ds.events = {name: store for name, store in events.items()}

    def _event_identity(self, user: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        ptype = self.ds.project_type
        # Events of UserID-based projects often lack `email`.
        if "email" in user and (ptype != "UserID-based" or self.rng.random() < 0.5):
            out["email"] = user["email"]
        if "userId" in user:
            out["userId"] = user["userId"]
        if "itblUserId" in user:
            out["itblUserId"] = user["itblUserId"]
        return out

    def _campaign_for(self, medium: str) -> tuple[int, int]:
        if medium not in self._launched_by_medium:
            launched = [c for c in self.ds.campaigns.values() if c["id"] in self.ds.activity]
            self._launched_by_medium[medium] = [
                c for c in launched if c["messageMedium"] == medium
            ] or launched
        matching = self._launched_by_medium[medium]
        if not matching:
            return 0, 0
        c = self.rng.choice(matching)
        return c["id"], c["templateId"]

    def _message_ref(self, medium: str) -> tuple[str, int, int]:
        if medium == "Email" and self._message_ids and self.rng.random() < 0.9:
            return self.rng.choice(self._message_ids)
        cid, tid = self._campaign_for(medium)
        return self._hex(32), cid, tid

    def build_event(
        self, data_type: str, user: dict[str, Any], cursor: float
    ) -> tuple[dict[str, Any], float]:
        created_str, exact = timefmt.varied_str(cursor, self.rng)
        record = self._event_identity(user)
        record["createdAt"] = created_str
        medium = medium_of_event(data_type)
        builder = getattr(self, f"_ev_{data_type}", None)
        if builder is not None:
            builder(record, medium)
        else:
            self._ev_generic(record, data_type, medium)
        return record, exact

    def _itbl_internal(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"documentCreatedAt": record["createdAt"], "documentUpdatedAt": record["createdAt"]}

    def _ev_emailSend(self, r: dict[str, Any], medium: str) -> None:
        cid, tid = self._campaign_for("Email")
        mid = self._hex(32)
        self._message_ids.append((mid, cid, tid))
        channel = next((c for c in self.ds.channels if c["messageMedium"] == "Email"), None)
        r.update(
            messageId=mid,
            messageBusId=self._hex(24),
            campaignId=cid,
            templateId=tid,
            messageTypeId=self.ds.message_types[0]["id"] if self.ds.message_types else 0,
            channelId=channel["id"] if channel else 0,
            contentId=self.rng.randint(100000, 999999),
            catalogLookupCount=0,
            catalogCollectionCount=0,
            productRecommendationCount=self.rng.randint(0, 3),
        )
        if self.rng.random() < 0.5:
            # transactionalData arrives as a JSON-encoded string.
            r["transactionalData"] = json.dumps({"orderId": self._hex(8), "amount": self.rng.randint(1, 300)})
        r["itblInternal"] = self._itbl_internal(r)

    def _engagement(self, r: dict[str, Any], medium: str) -> None:
        mid, cid, tid = self._message_ref(medium)
        r.update(
            messageId=mid,
            campaignId=cid,
            templateId=tid,
            ip=f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",
            userAgent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)",
            userAgentDevice=self.rng.choice(("Gmail", "iPhone", "Other")),
            city=self.rng.choice(("Berlin", "Austin", "Lyon")),
            region=self.rng.choice(("BE", "TX", "ARA")),
            country=self.rng.choice(("DE", "US", "FR")),
        )

    def _ev_emailOpen(self, r: dict[str, Any], medium: str) -> None:
        self._engagement(r, medium)

    def _ev_emailClick(self, r: dict[str, Any], medium: str) -> None:
        self._engagement(r, medium)
        r.update(
            url=f"https://shop.example.com/p/{self.rng.randint(1, 500)}",
            hrefIndex=self.rng.randint(0, 9),
            contentId=self.rng.randint(100000, 999999),
        )

    def _ev_emailBounce(self, r: dict[str, Any], medium: str) -> None:
        mid, cid, tid = self._message_ref(medium)
        hard = self.rng.random() < 0.6
        r.update(
            messageId=mid,
            campaignId=cid,
            templateId=tid,
            recipientState="HardBounce" if hard else "SoftBounce",
            status="5.1.1" if hard else "4.2.2",
        )

    def _ev_emailUnSubscribe(self, r: dict[str, Any], medium: str) -> None:
        r.update(
            unsubSource=self.rng.choice(("HardBounce", "Import", "EmailLink", "API")),
            emailListIds=self._sample_ids(self.ds.lists, 0.3),
            channelIds=self._sample_ids(self.ds.channels, 0.3),
        )
        if self.rng.random() < 0.5:
            mid, cid, tid = self._message_ref(medium)
            r.update(messageId=mid, campaignId=cid, templateId=tid)

    def _ev_emailSubscribe(self, r: dict[str, Any], medium: str) -> None:
        r.update(
            emailListIds=self._sample_ids(self.ds.lists, 0.4),
            channelIds=self._sample_ids(self.ds.channels, 0.3),
            profileUpdatedAt=r["createdAt"],
            signupSource=self.rng.choice(("API", "WebForm", "Import")),
        )

    def _ev_emailSendSkip(self, r: dict[str, Any], medium: str) -> None:
        cid, tid = self._campaign_for("Email")
        r.update(
            reason=self.rng.choice(("DuplicateMarketingMessage", "FrequencyCapped", "Unsubscribed")),
            messageId=self._hex(32),
            campaignId=cid,
            templateId=tid,
            transactionalData="{}",
        )

    def _ev_customEvent(self, r: dict[str, Any], medium: str) -> None:
        r["eventName"] = self.rng.choice(_CUSTOM_EVENTS)
        if self.rng.random() < 0.5:
            r["id"] = self._hex(24)
        r["itblInternal"] = self._itbl_internal(r)
        # Custom event fields sit at the top level.
        r["platform"] = self.rng.choice(("iOS", "Android", "Web"))
        if self.rng.random() < 0.5:
            r["productId"] = f"sku-{self.rng.randint(1, 500)}"

    def _ev_purchase(self, r: dict[str, Any], medium: str) -> None:
        items: list[dict[str, Any]] = []
        for _ in range(self.rng.randint(1, 3)):
            price = round(self.rng.uniform(3, 150), 2)
            sku = self.rng.randint(1, 500)
            items.append(
                {
                    "id": f"sku-{sku}",
                    "sku": f"sku-{sku}",
                    "name": f"Product {sku}",
                    "price": price,
                    "quantity": self.rng.randint(1, 3),
                    "categories": ["shop"],
                }
            )
        r["id"] = self._hex(24)
        r["items"] = items
        r["total"] = round(sum(i["price"] * i["quantity"] for i in items), 2)
        if self.rng.random() < 0.5:
            cid, tid = self._campaign_for("Email")
            r.update(campaignId=cid, templateId=tid)
        r["itblInternal"] = self._itbl_internal(r)

    def _ev_generic(self, r: dict[str, Any], data_type: str, medium: str) -> None:
        mid, cid, tid = self._message_ref(medium)
        r.update(campaignId=cid, templateId=tid, messageId=mid)
        if data_type.endswith("Send"):
            r["messageTypeId"] = self.ds.message_types[0]["id"] if self.ds.message_types else 0
        if data_type.endswith("SendSkip"):
            r["reason"] = self.rng.choice(("FrequencyCapped", "MissingDeviceToken", "Unsubscribed"))
        if data_type.endswith("Click"):
            r["url"] = f"https://shop.example.com/p/{self.rng.randint(1, 500)}"
        if data_type.endswith("Bounce"):
            r["status"] = self.rng.choice(("InvalidToken", "Failed", "Undeliverable"))

    # -- the rest ----------------------------------------------------------------------------------
    def _journeys(self) -> None:
        for i in range(self.spec.journeys):
            created = self._t()
            updated = self._t(created)
            archived = self.rng.random() < 0.25
            jid = 70001 + i * 5
            self.ds.journeys.append(
                {
                    "id": jid,
                    "name": f"Journey {i}",
                    "description": f"Lifecycle journey {i}",
                    "createdAt": timefmt.epoch_ms(created),
                    "updatedAt": timefmt.epoch_ms(updated),
                    "creatorUserId": self.rng.choice(_EMPLOYEES),
                    "enabled": not archived and self.rng.random() < 0.7,
                    "isArchived": archived,
                    "journeyType": self.rng.choice(("Journey", "Triggered")),
                    "lifetimeLimit": self.rng.choice((1, 3, 100)),
                    "simultaneousLimit": 1,
                    "startTileId": self.rng.randint(1, 99),
                    "triggerEventNames": [self.rng.choice(_CUSTOM_EVENTS)],
                    "draft": {
                        "id": jid + 1,
                        "name": f"Journey {i} draft",
                        "createdAt": timefmt.epoch_ms(created),
                        "updatedAt": timefmt.epoch_ms(updated),
                        "creatorUserId": self.rng.choice(_EMPLOYEES),
                    },
                }
            )

    def _snippets(self) -> None:
        for i in range(self.spec.snippets):
            created = self._t()
            self.ds.snippets.append(
                {
                    "id": 301 + i,
                    "name": f"snippet_{i}",
                    "content": "<p>Hello {{firstName}}</p>",
                    "description": f"Reusable block {i}",
                    "createdAt": timefmt.iso_str(created),
                    "updatedAt": timefmt.iso_str(self._t(created)),
                    "createdBy": self.rng.choice(_EMPLOYEES),
                    "updatedBy": self.rng.choice(_EMPLOYEES),
                    "projectId": 1234,
                    "variables": ["firstName"],
                }
            )

    def _catalogs(self) -> None:
        for i in range(self.spec.catalogs):
            name = ("products", "stores", "recipes")[i % 3] + ("" if i < 3 else str(i))
            items = []
            for j in range(self.spec.catalog_items):
                value = {
                    "title": f"{name} item {j}",
                    "price": round(self.rng.uniform(1, 99), 2),
                    "inStock": True,
                }
                items.append(
                    {
                        "catalogName": name,
                        "itemId": f"{name}-{j}",
                        "lastModified": timefmt.iso_str(self._t()),
                        "size": len(json.dumps(value)),
                        "value": value,
                    }
                )
            self.ds.catalogs[name] = items

    def _experiments(self) -> None:
        email = [
            c
            for c in self.ds.campaigns.values()
            if c["messageMedium"] == "Email" and c["id"] in self.ds.activity
        ]
        for i in range(min(self.spec.experiments, len(email))):
            campaign = email[i]
            self.ds.experiments.append(
                {
                    "id": 8001 + i,
                    "campaignId": campaign["id"],
                    "variants": [
                        {"templateId": campaign["templateId"], "name": "Control"},
                        {"templateId": campaign["templateId"] + 1, "name": "Variant B"},
                    ],
                }
            )


def infer_user_fields(users: list[dict[str, Any]]) -> dict[str, str]:
    date_fields = {
        "signupDate",
        "profileUpdatedAt",
        "lastPurchaseDate",
        "itblInternal.documentCreatedAt",
        "itblInternal.documentUpdatedAt",
    }
    fields: dict[str, str] = {}
    for user in users:
        for key, value in user.items():
            if key in date_fields:
                fields[key] = "date"
            elif isinstance(value, bool):
                fields[key] = "boolean"
            elif isinstance(value, int):
                fields[key] = "long"
            elif isinstance(value, float):
                fields[key] = "double"
            elif isinstance(value, (list, dict)):
                fields[key] = "object"
            else:
                fields[key] = "string"
    return dict(sorted(fields.items()))
