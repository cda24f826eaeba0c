#pragma once
// Internal to core/io: the atomic file write both writers use.
#include <string>
#include <utility>
#include <vector>

namespace plateau::io::detail {

// Writes the pieces, in order, to "<path>.tmp.<pid>", syncs it and renames it over `path`, so readers
// see either the old file or the complete new one. On failure the temporary file is removed and the
// error names the path, the op and the OS error.
void write_file_atomically(const std::string& path, const char* op,
                           const std::vector<std::pair<const void*, size_t>>& pieces);

}  // namespace plateau::io::detail
