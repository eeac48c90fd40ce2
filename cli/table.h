// A plain-text table for weftctl's output: a header row and data rows, each
// column as wide as its widest cell, columns two spaces apart, like kubectl's
// and istioctl's tables. Cells are single-line; empty cells print as "-".
#pragma once

#include <string>
#include <vector>

namespace weft::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}

  // A row with fewer cells than the header is padded with "-"; extra cells
  // are dropped.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // The header and the rows, each line ending in "\n", trailing blanks trimmed.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace weft::cli
