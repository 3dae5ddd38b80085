"""The OpenAPI 3 document of ``/api/``, written by hand next to the views it describes.

The test suite fuzzes the API against this document (schemathesis), so a view and its description
cannot drift apart unnoticed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": "string", "format": "date-time", "nullable": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


UNAUTHORIZED = {**_error("Missing, invalid or revoked bearer token."),
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}}
BAD_REQUEST = _error("A query parameter is malformed.")
NOT_FOUND = _error("No such camera, or no snapshot yet.")

SLUG_PARAM = {"name": "slug", "in": "path", "required": True, "description": "The camera's slug, e.g. lobby.",
              "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}}
LIMIT_PARAM = {"name": "limit", "in": "query", "required": False, "description": "At most this many rows.",
               "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}


def _time_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": DATE_TIME,
            "description": f"{description} RFC 3339 (ISO 8601 with a zone), e.g. 2026-11-27T10:00:00Z."}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["status", "message"], "additionalProperties": False,
        "properties": {"status": {"type": "integer", "minimum": 400, "maximum": 599},
                       "message": {"type": "string"}},
    },
    "Detection": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "camera", "segment_key", "start_time", "end_time", "peak", "mean", "unique_people",
                     "counts", "has_snapshot", "model"],
        "properties": {
            "id": {"type": "integer"},
            "camera": {"type": "string", "description": "The camera's slug."},
            "segment_key": {"type": "string", "description": "The analysed video segment's bucket key."},
            "start_time": DATE_TIME, "end_time": DATE_TIME,
            "peak": {"type": "integer", "minimum": 0, "description": "Most people in one analysed frame."},
            "mean": {"type": "number", "minimum": 0},
            "unique_people": {"type": "integer", "minimum": 0, "description": "Distinct tracks."},
            "counts": {"type": "array", "items": {"type": "integer"},
                       "description": "People per analysed frame."},
            "has_snapshot": {"type": "boolean"},
            "model": {"type": "string"},
        },
    },
    "Camera": {
        "type": "object", "additionalProperties": False,
        "required": ["slug", "name", "area", "last_segment_key", "last_segment_at", "latest_detection",
                     "latest_snapshot"],
        "properties": {
            "slug": {"type": "string"}, "name": {"type": "string"}, "area": {"type": "string"},
            "last_segment_key": {"type": "string", "nullable": True},
            "last_segment_at": NULLABLE_DATE_TIME,
            "latest_detection": {**_ref("Detection"), "nullable": True},
            "latest_snapshot": {"type": "string", "nullable": True,
                                "description": "Path of the latest annotated snapshot (JPEG), if any."},
        },
    },
    "Event": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "source", "detail_type", "time", "status", "targets", "detail"],
        "properties": {
            "id": {"type": "string"}, "source": {"type": "string"}, "detail_type": {"type": "string"},
            "time": DATE_TIME,
            "status": {"type": "string", "description": "pending, delivered, failed or unmatched."},
            "targets": {"type": "integer", "minimum": 0}, "detail": {"type": "object"},
        },
    },
    "CleaningRequest": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "area", "note", "status", "report", "requester", "created_at", "closed_at"],
        "properties": {
            "id": {"type": "integer"}, "area": {"type": "string"}, "note": {"type": "string"},
            "status": {"type": "string", "description": "open or done."},
            "report": {"type": "string", "nullable": True},
            "requester": {"type": "string", "nullable": True, "description": "The requester's name."},
            "created_at": DATE_TIME, "closed_at": NULLABLE_DATE_TIME,
        },
    },
}


def _list_of(name: str, key: str) -> dict[str, Any]:
    return {"type": "object", "required": [key], "additionalProperties": False,
            "properties": {key: {"type": "array", "items": _ref(name)}}}


@cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Corb API", "version": "1.0.0",
                 "description": "Read-only access to Corb's cameras, detections, events and cleaning "
                                "requests. Create a token with `corb api token create NAME`."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/cameras": {"get": {
                "operationId": "listCameras", "summary": "Every camera with its latest detection.",
                "responses": {"200": _json(_list_of("Camera", "cameras"), "The cameras."),
                              "400": BAD_REQUEST, "401": UNAUTHORIZED}}},
            "/api/cameras/{slug}": {"get": {
                "operationId": "getCamera", "summary": "One camera.", "parameters": [SLUG_PARAM],
                "responses": {"200": _json(_ref("Camera"), "The camera."), "400": BAD_REQUEST,
                              "401": UNAUTHORIZED, "404": NOT_FOUND}}},
            "/api/cameras/{slug}/latest.jpg": {"get": {
                "operationId": "getLatestSnapshot", "summary": "The camera's latest annotated snapshot.",
                "parameters": [SLUG_PARAM],
                "responses": {"200": {"description": "A JPEG picture.",
                                      "content": {"image/jpeg": {"schema": {"type": "string",
                                                                            "format": "binary"}}}},
                              "400": BAD_REQUEST, "401": UNAUTHORIZED, "404": NOT_FOUND}}},
            "/api/detections": {"get": {
                "operationId": "listDetections", "summary": "Detections, newest first.",
                "parameters": [
                    {"name": "camera", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "Only this camera (its slug)."},
                    _time_param("since", "Only segments that ended at or after this time."),
                    _time_param("until", "Only segments that started at or before this time."),
                    LIMIT_PARAM],
                "responses": {"200": _json(_list_of("Detection", "detections"), "The detections."),
                              "400": BAD_REQUEST, "401": UNAUTHORIZED, "404": NOT_FOUND}}},
            "/api/events": {"get": {
                "operationId": "listEvents", "summary": "Recent events on the bus, newest first.",
                "parameters": [
                    {"name": "source", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "Only events from this source, e.g. corb.sms."},
                    _time_param("since", "Only events at or after this time."),
                    _time_param("until", "Only events at or before this time."),
                    LIMIT_PARAM],
                "responses": {"200": _json(_list_of("Event", "events"), "The events."),
                              "400": BAD_REQUEST, "401": UNAUTHORIZED}}},
            "/api/cleaning-requests": {"get": {
                "operationId": "listCleaningRequests", "summary": "Cleaning requests, newest first.",
                "parameters": [
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["open", "done"]}},
                    LIMIT_PARAM],
                "responses": {"200": _json(_list_of("CleaningRequest", "cleaning_requests"), "The requests."),
                              "400": BAD_REQUEST, "401": UNAUTHORIZED}}},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }
