"""Request and response models of the bikes domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from api.request_model import RequestModel
from api.security import id_number_valid
from reader_gateway.wire import TAG_ID_PATTERN
from track_engine.identifiers import frame_number_key, normalize_plate, remove_invisible

# The decoders' rule (reader_gateway.wire): a tag id no reader can report is refused here.
TAG_PATTERN = TAG_ID_PATTERN


class TagBindingOut(BaseModel):
    """A tag bound to the bike over a time range."""

    tag_id: str
    valid_from: datetime
    valid_to: datetime | None


class BikeOut(BaseModel):
    """A bike found by plate or frame number; the owner's phone is masked."""

    bike_id: int
    plate: str
    frame_number: str
    brand: str
    colour: str
    owner_name: str
    owner_phone: str
    tags: list[TagBindingOut]
    stolen_at: datetime | None
    case_number: str | None


class OwnerIn(RequestModel):
    """The owner as written on the registration form."""

    name: str = Field(min_length=1, max_length=100, examples=["Li Lei"])
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{4,19}$", examples=["13800138000"])
    id_number: str = Field(
        min_length=18,
        max_length=18,
        description="18-character national ID number (GB 11643 check character)",
        examples=["110101199003074258"],
    )
    address: str = Field(default="", max_length=300, examples=["3-2-501 Riverside estate"])

    @field_validator("id_number")
    @classmethod
    def _checksum(cls, value: str) -> str:
        if not id_number_valid(value):
            raise ValueError("not a valid national ID number (the check character does not fit)")
        return value.upper()


def _nonblank_key(value: str, what: str) -> str:
    if not frame_number_key(value):
        raise ValueError(f"{what} has no letters or digits")
    # Stored as written, less what nobody can see (a zero-width space hidden in a number).
    return remove_invisible(value).strip()


class RegistrationIn(RequestModel):
    """Everything the registrar enters at the desk, and the tag scanned with the desk reader."""

    owner: OwnerIn
    brand: str = Field(default="", max_length=60, examples=["Yadea"])
    model: str = Field(default="", max_length=60, examples=["DE3"])
    colour: str = Field(default="", max_length=40, examples=["red"])
    frame_number: str = Field(min_length=1, max_length=64, examples=["LYD2024A0001234"])
    motor_number: str = Field(default="", max_length=64, examples=["M48V-778812"])
    photo_url: str = Field(default="", max_length=500, pattern=r"^(https?://\S+)?$")
    plate: str = Field(min_length=1, max_length=32, examples=["浙B·12345"])
    tag_id: str = Field(pattern=TAG_PATTERN, examples=["E28011A1000000000000AB12"])
    event_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    booking_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="links the booking's resident account"
    )

    @field_validator("frame_number")
    @classmethod
    def _frame(cls, value: str) -> str:
        return _nonblank_key(value, "frame_number")

    @field_validator("motor_number")
    @classmethod
    def _motor(cls, value: str) -> str:
        return remove_invisible(value).strip()

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        if not normalize_plate(value):
            raise ValueError("plate has no letters or digits")
        return remove_invisible(value).strip()

    @field_validator("tag_id")
    @classmethod
    def _tag(cls, value: str) -> str:
        return value.upper()


class RetagIn(RequestModel):
    """The new tag, scanned with the desk reader."""

    tag_id: str = Field(pattern=TAG_PATTERN, examples=["E28011A1000000000000AB13"])

    @field_validator("tag_id")
    @classmethod
    def _tag(cls, value: str) -> str:
        return value.upper()


class OwnerChangeIn(RequestModel):
    """The bike's new owner."""

    owner: OwnerIn
    booking_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class OwnerOut(BaseModel):
    """The owner, masked: the ID number shows its last four characters only."""

    owner_id: int
    name: str
    phone: str
    id_number: str
    address: str


class TheftSummary(BaseModel):
    """The bike's open theft."""

    theft_id: int
    status: str
    stolen_at: datetime
    case_number: str | None


class BikeDetailOut(BaseModel):
    """A bike by id."""

    bike_id: int
    plate: str | None
    frame_number: str
    motor_number: str
    brand: str
    model: str
    colour: str
    photo_url: str
    owner: OwnerOut
    tags: list[TagBindingOut]
    registered_at: datetime
    deregistered_at: datetime | None
    theft: TheftSummary | None
