"""(being written)"""


def proxied_artifact_routes(config) -> list:
    return []
