// weft-proxy's gRPC core configuration, linked only into the static
// weft-proxy (proxy/CMakeLists.txt) in place of the one in Debian's
// libgrpc.a (grpc_plugin_registry.cc.o, which defines nothing else).
//
// gRPC registers there every resolver, load-balancing policy and filter it
// ships, and the linker keeps whatever that function names: the xDS client,
// RLS, grpclb, ring hash, priority, weighted target, outlier detection,
// c-ares, fault injection, RBAC and more, none of which the sidecar uses.
// It talks to one weftd address over one channel (ADS and the CA), and its
// memory counts once per workload (docs/benchmarks.md, "Sidecar data path").
//
// What stays is what such a channel needs, in gRPC's own order: the native
// DNS resolver and IP addresses, pick_first and round_robin, the TCP and
// HTTP CONNECT handshakes, TLS, deadlines, message sizes, idleness and the
// resource quota.
//
// These registration functions are gRPC internals without a public header,
// so they are named here by their symbols (gRPC 1.51; each takes a
// grpc_core::CoreConfiguration::Builder*, passed through as an opaque
// pointer). A gRPC that renames one fails to link. A gRPC that adds a
// registration its channels need is not caught here: the proxy's e2e tests,
// which run this static binary against weftd, are what would catch it.
namespace weft::proxy::grpc_registry {

struct Builder;  // grpc_core::CoreConfiguration::Builder

void RegisterEventEngineChannelArgPreconditioning(Builder* builder) __asm__(
    "_ZN17grpc_event_engine12experimental44RegisterEventEngineChannelArgPreconditioningEPN9grpc_"
    "core17CoreConfiguration7BuilderE");
void RegisterHttpConnectHandshaker(Builder* builder) __asm__(
    "_ZN9grpc_core29RegisterHttpConnectHandshakerEPNS_17CoreConfiguration7BuilderE");
void RegisterTCPConnectHandshaker(Builder* builder) __asm__(
    "_ZN9grpc_core28RegisterTCPConnectHandshakerEPNS_17CoreConfiguration7BuilderE");
void RegisterPickFirstLbPolicy(Builder* builder) __asm__(
    "_ZN9grpc_core25RegisterPickFirstLbPolicyEPNS_17CoreConfiguration7BuilderE");
void RegisterRoundRobinLbPolicy(Builder* builder) __asm__(
    "_ZN9grpc_core26RegisterRoundRobinLbPolicyEPNS_17CoreConfiguration7BuilderE");
void BuildClientChannelConfiguration(Builder* builder) __asm__(
    "_ZN9grpc_core31BuildClientChannelConfigurationEPNS_17CoreConfiguration7BuilderE");
void SecurityRegisterHandshakerFactories(Builder* builder) __asm__(
    "_ZN9grpc_core35SecurityRegisterHandshakerFactoriesEPNS_17CoreConfiguration7BuilderE");
void RegisterClientAuthorityFilter(Builder* builder) __asm__(
    "_ZN9grpc_core29RegisterClientAuthorityFilterEPNS_17CoreConfiguration7BuilderE");
void RegisterChannelIdleFilters(Builder* builder) __asm__(
    "_ZN9grpc_core26RegisterChannelIdleFiltersEPNS_17CoreConfiguration7BuilderE");
void RegisterHttpFilters(Builder* builder) __asm__(
    "_ZN9grpc_core19RegisterHttpFiltersEPNS_17CoreConfiguration7BuilderE");
void RegisterDeadlineFilter(Builder* builder) __asm__(
    "_ZN9grpc_core22RegisterDeadlineFilterEPNS_17CoreConfiguration7BuilderE");
void RegisterMessageSizeFilter(Builder* builder) __asm__(
    "_ZN9grpc_core25RegisterMessageSizeFilterEPNS_17CoreConfiguration7BuilderE");
void RegisterServiceConfigChannelArgFilter(Builder* builder) __asm__(
    "_ZN9grpc_core37RegisterServiceConfigChannelArgFilterEPNS_17CoreConfiguration7BuilderE");
void RegisterResourceQuota(Builder* builder) __asm__(
    "_ZN9grpc_core21RegisterResourceQuotaEPNS_17CoreConfiguration7BuilderE");
void RegisterNativeDnsResolver(Builder* builder) __asm__(
    "_ZN9grpc_core25RegisterNativeDnsResolverEPNS_17CoreConfiguration7BuilderE");
void RegisterSockaddrResolver(Builder* builder) __asm__(
    "_ZN9grpc_core24RegisterSockaddrResolverEPNS_17CoreConfiguration7BuilderE");
void RegisterHttpProxyMapper(Builder* builder) __asm__(
    "_ZN9grpc_core23RegisterHttpProxyMapperEPNS_17CoreConfiguration7BuilderE");
void RegisterSecurityFilters(Builder* builder) __asm__(
    "_ZN9grpc_core23RegisterSecurityFiltersEPNS_17CoreConfiguration7BuilderE");
void RegisterBuiltins(Builder* builder) __asm__(
    "_ZN9grpc_core16RegisterBuiltinsEPNS_17CoreConfiguration7BuilderE");

// grpc_core::BuildCoreConfiguration(grpc_core::CoreConfiguration::Builder*)
void BuildCoreConfiguration(Builder* builder) __asm__(
    "_ZN9grpc_core22BuildCoreConfigurationEPNS_17CoreConfiguration7BuilderE");

void BuildCoreConfiguration(Builder* builder) {
  RegisterEventEngineChannelArgPreconditioning(builder);
  RegisterHttpConnectHandshaker(builder);
  RegisterTCPConnectHandshaker(builder);
  RegisterPickFirstLbPolicy(builder);
  RegisterRoundRobinLbPolicy(builder);
  BuildClientChannelConfiguration(builder);
  SecurityRegisterHandshakerFactories(builder);
  RegisterClientAuthorityFilter(builder);
  RegisterChannelIdleFilters(builder);
  RegisterHttpFilters(builder);
  RegisterDeadlineFilter(builder);
  RegisterMessageSizeFilter(builder);
  RegisterServiceConfigChannelArgFilter(builder);
  RegisterResourceQuota(builder);
  RegisterNativeDnsResolver(builder);
  RegisterSockaddrResolver(builder);
  RegisterHttpProxyMapper(builder);
  RegisterSecurityFilters(builder);
  RegisterBuiltins(builder);
}

}  // namespace weft::proxy::grpc_registry
