// Weft's binaries take dashed flag names (--config-dir, DESIGN.md §3) while
// absl::Flags names are C++ identifiers (config_dir). Call this on argv before
// absl::ParseCommandLine: it rewrites the dashes in each `--flag-name[=value]`
// name (not in values, and nothing after a bare `--`) to underscores.
#pragma once

namespace weft::common {

void NormalizeFlagNames(int argc, char** argv);

}  // namespace weft::common
