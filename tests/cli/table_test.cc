#include "cli/table.h"

#include <catch2/catch.hpp>

namespace weft::cli {
namespace {

TEST_CASE("columns are as wide as their widest cell, two spaces apart", "[cli]") {
  Table table({"NAME", "STATUS", "X"});
  table.AddRow({"orders", "SYNCED", ""});
  table.AddRow({"a", "NACKED", "long cell"});
  CHECK(table.rows() == 2);
  CHECK(table.Render() ==
        "NAME    STATUS  X\n"
        "orders  SYNCED  -\n"
        "a       NACKED  long cell\n");
}

TEST_CASE("short rows are padded with -, long ones cut, cells kept on one line", "[cli]") {
  Table table({"A", "B"});
  table.AddRow({"x"});
  table.AddRow({"1", "2", "3"});
  table.AddRow({"multi\nline", "tab\there"});
  CHECK(table.Render() ==
        "A           B\n"
        "x           -\n"
        "1           2\n"
        "multi line  tab here\n");
  CHECK(Table({"ONLY"}).Render() == "ONLY\n");
}

}  // namespace
}  // namespace weft::cli
