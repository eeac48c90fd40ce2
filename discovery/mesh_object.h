// One decoded object of a kind the mesh uses (Service, EndpointSlice,
// Workload, Pod, Namespace, or a policy document), as produced by
// DecodeObject() and gathered into a MeshSnapshot by the registries (file
// mode and the Kubernetes client).
#pragma once

#include <string>
#include <variant>

#include "discovery/mesh_snapshot.h"

namespace weft::discovery {

using MeshObject = std::variant<Service, EndpointSlice, Workload, Pod, Namespace, PolicyDocument>;

// "Service", "EndpointSlice", ..., or the policy document's own kind
// ("HTTPRoute", "TrafficPolicy", ...).
std::string KindOf(const MeshObject& object);

const ObjectMeta& MetaOf(const MeshObject& object);

// "Kind/namespace/name" ("Namespace/name" for namespaces): unique across all
// kinds, used to find duplicates and earlier versions of an object.
std::string MeshObjectKey(const MeshObject& object);
std::string MeshObjectKey(const std::string& kind, const std::string& ns, const std::string& name);

// True when `snapshot` holds an object with the key of `object`.
bool SnapshotContains(const MeshSnapshot& snapshot, const MeshObject& object);

// True when `snapshot` holds an object with the key of `object` that is the
// same in every field (SameObject).
bool SnapshotHolds(const MeshSnapshot& snapshot, const MeshObject& object);

// Puts `object` into the matching map of `snapshot`, replacing any object
// with the same kind, namespace and name.
void AddToSnapshot(MeshObject object, MeshSnapshot& snapshot);

// Removes the object with this kind, namespace and name, if present.
void RemoveFromSnapshot(const std::string& kind, const std::string& ns, const std::string& name,
                        MeshSnapshot& snapshot);

}  // namespace weft::discovery
