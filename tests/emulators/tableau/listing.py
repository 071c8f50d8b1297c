"""pageSize/pageNumber, filter= and sort= as Tableau's list endpoints read them."""

import math

from http_types import ApiError, bad_request

DEFAULT_PAGE_SIZE = 100


def _split_top_level(expression):
    # filter=tags:in:[a,b],name:eq:x - commas inside [..] belong to the value
    parts, depth, current = [], 0, ""
    for ch in expression:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return parts


def _matches(value, op, operand):
    values = value if isinstance(value, list) else [value]
    if op == "eq":
        return operand in values
    if op == "in":
        return any(v in operand for v in values)
    if op == "has":
        return any(v is not None and operand.lower() in v.lower() for v in values)
    if value is None:
        return False
    # Dates are ISO 8601 strings in UTC, so string order is time order.
    return {"gt": value > operand, "gte": value >= operand, "lt": value < operand, "lte": value <= operand}[op]


def apply_filter(req, items, fields):
    """Keeps the items that pass every term of filter=; `fields` maps a field to a getter."""
    expression = req.param("filter")
    if not expression:
        return items
    for term in _split_top_level(expression):
        pieces = term.split(":", 2)
        if len(pieces) != 3:
            raise bad_request(f"Invalid filter term {term!r}: expected field:operator:value")
        field, op, operand = pieces
        if field not in fields:
            raise bad_request(f"The filter field {field!r} is not supported here (emulator knows {sorted(fields)})")
        if op not in ("eq", "in", "has", "gt", "gte", "lt", "lte"):
            raise bad_request(f"The filter operator {op!r} is not valid")
        if op == "in":
            if not (operand.startswith("[") and operand.endswith("]")):
                raise bad_request(f"The in operator needs a [list], got {operand!r}")
            operand = [v for v in operand[1:-1].split(",") if v != ""]
        getter = fields[field]
        items = [item for item in items if _matches(getter(item), op, operand)]
    return items


def apply_sort(req, items, fields):
    expression = req.param("sort")
    if not expression:
        return items
    for term in reversed(expression.split(",")):
        field, _, direction = term.partition(":")
        if field not in fields:
            raise bad_request(f"The sort field {field!r} is not supported here")
        getter = fields[field]
        items = sorted(items, key=lambda item: (getter(item) is None, getter(item) or ""), reverse=direction == "desc")
    return items


def paginate(req, items, max_page_size):
    """The page asked for, with (pageNumber, pageSize, totalAvailable)."""
    try:
        page_size = int(req.param("pageSize", DEFAULT_PAGE_SIZE))
    except ValueError:
        raise bad_request("The page size parameter is not an integer", "400007")
    if page_size < 1:
        raise bad_request("The page size parameter is less than one", "400007")
    if page_size > max_page_size:
        raise ApiError(403, "403014", "Page Size Limit Exceeded", f"The page size exceeds {max_page_size}")
    try:
        page_number = int(req.param("pageNumber", 1))
    except ValueError:
        raise bad_request("The page number parameter is not an integer", "400006")
    total = len(items)
    last_page = max(1, math.ceil(total / page_size))
    # Tableau refuses a page past the last one instead of answering an empty page.
    if page_number < 1 or page_number > last_page:
        raise bad_request(
            f"Page {page_number} is not between 1 and the last page {last_page} at page size {page_size}", "400006"
        )
    start = (page_number - 1) * page_size
    return items[start : start + page_size], page_number, page_size, total
