"""Users, groups and memberships: served only from the account's identity region."""

import re

from .world import ApiError

ROLES = {"ADMIN", "AUTHOR", "READER", "RESTRICTED_AUTHOR", "RESTRICTED_READER", "ADMIN_PRO", "AUTHOR_PRO", "READER_PRO"}
IAM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):(user|role)/(?:.*/)?([^/]+)$")


def user_json(u):
    out = {
        "Arn": u["arn"],
        "UserName": u["name"],
        "Email": u["email"],
        "Role": u["role"],
        "IdentityType": u["identity_type"],
        "Active": u["active"],
        "PrincipalId": u["principal_id"],
    }
    if u.get("custom_permissions_name"):
        out["CustomPermissionsName"] = u["custom_permissions_name"]
    return out


def group_json(g):
    out = {"Arn": g["arn"], "GroupName": g["name"], "PrincipalId": g["principal_id"]}
    if g.get("description"):
        out["Description"] = g["description"]
    return out


def _ns(world, ctx):
    return world.namespace(ctx.account, ctx.region, ctx.params["Namespace"])


def _user(ns, name):
    if name not in ns["users"]:
        raise ApiError("ResourceNotFoundException", f"User {name} not found", "USER")
    return ns["users"][name]


def list_users(world, ctx):
    ns = _ns(world, ctx)
    page, token = world.paginate(ns["users"].values(), ctx.query, ctx.listing_key())
    return {"UserList": [user_json(u) for u in page], "NextToken": token}


def list_groups(world, ctx):
    ns = _ns(world, ctx)
    page, token = world.paginate(ns["groups"].values(), ctx.query, ctx.listing_key())
    return {"GroupList": [group_json(g) for g in page], "NextToken": token}


def list_group_memberships(world, ctx):
    ns = _ns(world, ctx)
    group = world.group(ctx.account, ctx.params["Namespace"], ctx.params["GroupName"])
    page, token = world.paginate(group["members"], ctx.query, ctx.listing_key())
    members = [{"Arn": ns["users"][m]["arn"], "MemberName": m} for m in page]
    return {"GroupMemberList": members, "NextToken": token}


def describe_user(world, ctx):
    return {"User": user_json(_user(_ns(world, ctx), ctx.params["UserName"]))}


def describe_group(world, ctx):
    _ns(world, ctx)
    return {"Group": group_json(world.group(ctx.account, ctx.params["Namespace"], ctx.params["GroupName"]))}


def register_user(world, ctx):
    ns = _ns(world, ctx)
    body = ctx.body
    identity_type = body.get("IdentityType")
    role = body.get("UserRole")
    email = body.get("Email")
    if not email:
        raise ApiError("InvalidParameterValueException", "Email is required")
    if role not in ROLES:
        raise ApiError("InvalidParameterValueException", f"UserRole {role!r} is not valid")
    if identity_type == "IAM":
        iam_arn = body.get("IamArn")
        m = IAM_ARN_RE.match(iam_arn or "")
        if not m:
            raise ApiError("InvalidParameterValueException", "IamArn is required for IdentityType IAM and must be an IAM user or role ARN")
        # QuickSight names IAM users after the IAM name, and role sessions
        # as <role>/<session>, which is why user names may contain a slash.
        name = m.group(3)
        if m.group(2) == "role":
            session = body.get("SessionName")
            if not session:
                raise ApiError("InvalidParameterValueException", "SessionName is required when IamArn is a role")
            name = f"{name}/{session}"
    elif identity_type == "QUICKSIGHT":
        name = body.get("UserName")
        if not name:
            raise ApiError("InvalidParameterValueException", "UserName is required for IdentityType QUICKSIGHT")
        iam_arn = None
    else:
        raise ApiError("InvalidParameterValueException", f"IdentityType {identity_type!r} cannot be registered with RegisterUser")
    if name in ns["users"]:
        raise ApiError("ResourceExistsException", f"The user {name} already exists", "USER")
    user = world.add_user(
        ctx.account,
        ctx.params["Namespace"],
        {
            "name": name,
            "email": email,
            "role": role,
            "identity_type": identity_type,
            # An invited QuickSight user is inactive until the invitation is accepted.
            "active": identity_type == "IAM",
            "iam_arn": iam_arn,
            "custom_permissions_name": body.get("CustomPermissionsName"),
        },
    )
    out = {"User": user_json(user)}
    if identity_type == "QUICKSIGHT":
        out["UserInvitationUrl"] = f"http://{ctx.host}/_invitation/{ctx.account}/{user['principal_id'].split('/')[-1]}"
    return out


def create_group(world, ctx):
    ns = _ns(world, ctx)
    name = ctx.body.get("GroupName")
    if not name:
        raise ApiError("InvalidParameterValueException", "GroupName is required")
    if name in ns["groups"]:
        raise ApiError("ResourceExistsException", f"Group {name} already exists", "GROUP")
    group = world.add_group(ctx.account, ctx.params["Namespace"], name, ctx.body.get("Description"))
    return {"Group": group_json(group)}


def create_group_membership(world, ctx):
    ns = _ns(world, ctx)
    group = world.group(ctx.account, ctx.params["Namespace"], ctx.params["GroupName"])
    member = ctx.params["MemberName"]
    user = _user(ns, member)
    if member not in group["members"]:
        group["members"].append(member)
    return {"GroupMember": {"Arn": user["arn"], "MemberName": member}}


def delete_user(world, ctx):
    ns = _ns(world, ctx)
    name = ctx.params["UserName"]
    _user(ns, name)
    del ns["users"][name]
    for group in ns["groups"].values():
        if name in group["members"]:
            group["members"].remove(name)
    return {}


def delete_group(world, ctx):
    ns = _ns(world, ctx)
    name = ctx.params["GroupName"]
    world.group(ctx.account, ctx.params["Namespace"], name)
    del ns["groups"][name]
    return {}


def dump_identities(acc):
    """Users, groups and memberships of one account for /_emulator/state."""
    out = {}
    for ns_name, ns in acc["namespaces"].items():
        out[ns_name] = {
            "users": [dict(u) for u in ns["users"].values()],
            "groups": [{k: v for k, v in g.items() if k != "members"} for g in ns["groups"].values()],
            "memberships": [{"group": g["name"], "member": m} for g in ns["groups"].values() for m in g["members"]],
        }
    return out

