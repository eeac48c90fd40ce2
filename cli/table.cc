#include "cli/table.h"

#include <algorithm>

namespace weft::cli {
namespace {

// Newlines or tabs inside a cell would break the columns.
std::string SingleLine(std::string cell) {
  if (cell.empty()) return "-";
  std::replace_if(
      cell.begin(), cell.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return cell;
}

}  // namespace

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(header_.size(), "-");
  for (auto& cell : cells) cell = SingleLine(std::move(cell));
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size());
  for (size_t i = 0; i < header_.size(); ++i) widths[i] = header_[i].size();
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  auto append_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line.append(widths[i] - cells[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  append_line(header_);
  for (const auto& row : rows_) append_line(row);
  return out;
}

}  // namespace weft::cli
