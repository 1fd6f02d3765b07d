// music-admin check and explain: is every copy the listing reads exact, and is every listing
// variant planned as the README says.
#include <soci/soci.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>
#include <vector>

#include "admin/cli.hpp"
#include "db/admin_statements.hpp"
#include "db/statements.hpp"

namespace music_api::admin {
namespace sa = sql::admin;
namespace {

// Values to EXECUTE a listing with: types come from the statement, so quoted literals suffice.
std::string_view SampleValue(std::string_view name) {
  if (name == "limit") return "50";
  if (name == "offset" || name == "now") return "0";
  if (name == "lag") return "5";
  return "x";
}

}  // namespace

int Check(Context& context) {
  context.args.ExpectPositional(0, "check");
  struct Copy {
    const char* what;
    std::string_view query;
  };
  const Copy copies[] = {
      {"collection entries' copy of the owner's saved_at (004_collection_saved_at.sql)", sa::kDriftCollectionSavedAt},
      {"library saves' copy of the track's org, mode and engine (001_schema.sql)", sa::kDriftSaveModeEngine},
      {"collection entries' positions, 0 to n-1 (008_collections_shares.sql)", sa::kDriftCollectionPositions},
  };
  bool drift = false;
  for (const Copy& copy : copies) {
    long long rows = 0;
    context.Session() << copy.query, soci::into(rows);
    std::cout << (rows == 0 ? "ok     " : "DRIFT  ") << rows << " rows: " << copy.what << "\n";
    drift = drift || rows != 0;
  }
  std::cout << (drift ? "check: drift found\n" : "check: every copy is exact\n");
  return drift ? 1 : 0;
}

int Explain(Context& context) {
  context.args.ExpectPositional(0, "explain");
  soci::session& session = context.Session();
  session << sa::kGenericPlans;
  for (int i = 0; i < sql::kListingVariants; ++i) {
    sql::ListingFilters filters{(i & 1) != 0, (i & 2) != 0, (i & 4) != 0};
    // The workers' text with its :name placeholders numbered, as SOCI sends it.
    std::string text = sql::ListingQuery(filters), numbered, values;
    std::vector<std::string> names;
    for (size_t p = 0; p < text.size(); ++p) {
      if (text[p] != ':' || p + 1 >= text.size() || !std::islower(static_cast<unsigned char>(text[p + 1]))) {
        numbered += text[p];
        continue;
      }
      size_t end = p + 1;
      while (end < text.size() && (std::islower(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
      std::string name = text.substr(p + 1, end - p - 1);
      auto known = std::find(names.begin(), names.end(), name);
      if (known == names.end()) {
        names.push_back(name);
        values += (values.empty() ? "'" : ", '") + std::string(SampleValue(name)) + "'";
        known = names.end() - 1;
      }
      numbered += "$" + std::to_string(known - names.begin() + 1);
      p = end - 1;
    }
    std::string statement = "music_admin_explain_" + std::to_string(i);
    session << "PREPARE " + statement + " AS " + numbered;
    soci::rowset<std::string> plan =
        (session.prepare << "EXPLAIN (COSTS OFF) EXECUTE " + statement + "(" + values + ")");
    std::cout << "variant mode=" << filters.mode << " engine=" << filters.engine << " collection=" << filters.collection
              << "\n";
    for (const std::string& line : plan) std::cout << "  " << line << "\n";
    session << "DEALLOCATE " + statement;
  }
  return 0;
}

}  // namespace music_api::admin
