// Owner-only requests (control, network, output, resource util) run on the node that owns the job.
// Which node that is, and whether it can be asked, is decided here for both front doors; how the
// request gets there is theirs (HTTP relays the request, the plugin calls the owner's HTTP API).
import { ApiError, ErrCode } from "../../api/index.js";
import type { Caller, JobLocation, LauncherService } from "../port.js";

/** The client-facing answer when the job's owner can't serve (503, code 4, naming the node). */
export function ownerUnavailable(id: string, owner: string, why: string, cause?: unknown): ApiError {
  return new ApiError(ErrCode.PluginRestarted, `Job ${id} is owned by node ${owner}, which ${why}`, {
    cause,
  });
}

/** Where an owner-only request runs: on this node, or on the (reachable-looking) owner. */
export type OwnerRoute = { local: true } | { local: false; location: JobLocation & { baseUrl: string } };

/** The route for a located job; PluginRestarted when its owner is draining, offline or unknown. */
export function ownerRoute(id: string, location: JobLocation): OwnerRoute {
  if (location.local) return { local: true };
  if (location.draining) throw ownerUnavailable(id, location.owner, "is draining");
  if (!location.online) throw ownerUnavailable(id, location.owner, "is offline");
  if (!location.baseUrl) throw ownerUnavailable(id, location.owner, "has no known address");
  return { local: false, location: { ...location, baseUrl: location.baseUrl } };
}

/** Finds the owner of a job visible to the caller (JobNotFound otherwise) and routes to it. */
export async function routeToOwner(
  service: LauncherService,
  caller: Caller,
  id: string,
): Promise<OwnerRoute> {
  return ownerRoute(id, await service.locate(caller, id));
}

/** Runs `local` on this node, or `remote` against the owner the route names. */
export function onOwner<T>(
  route: OwnerRoute,
  local: () => T,
  remote: (location: JobLocation & { baseUrl: string }) => T,
): T {
  return route.local ? local() : remote(route.location);
}
