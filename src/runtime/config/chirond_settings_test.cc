#include "runtime/config/chirond_settings.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "runtime/store/store.h"
#include "runtime/tee/platform.h"

namespace chiron::runtime {
namespace {

// chirond's option set with the command line `args` parsed, then `config` applied.
struct Parsed {
  ChirondSettings settings;
  CLI::App app{"chirond", "chirond"};
  Status status;
  std::string config_path;
  bool print_config = false;

  Parsed(std::vector<std::string> args, const std::string& config) {
    app.add_option("--config", config_path);
    app.add_flag("--print-config", print_config);
    AddChirondOptions(app, settings);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
    app.parse(args);
    auto entries = ParseConfigText(config, "chirond.conf");
    status = entries.ok() ? ApplyConfigEntries(app, *entries, "chirond.conf") : entries.status();
  }
};

TEST(ChirondSettingsTest, FileSetsEveryKindOfOption) {
  Parsed p({}, "platform = tsm\n"
               "listen = 0.0.0.0:9000\n"
               "state = /srv/chiron\n"
               "query-budget = 7\n"
               "worker-threads = 4\n"
               "sim-debug = true\n"
               "sim-svn = 3\n"
               "quota = 512M\n"
               "max-datasets = 5\n"
               "metrics-listen = 127.0.0.1:9464\n"
               "verbose = false\n");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.settings.platform, "tsm");
  EXPECT_EQ(p.settings.listen, "0.0.0.0:9000");
  EXPECT_EQ(p.settings.state_dir, "/srv/chiron");
  EXPECT_EQ(p.settings.query_budget, 7u);
  EXPECT_EQ(p.settings.worker_threads, 4);
  EXPECT_TRUE(p.settings.sim_debug);
  EXPECT_EQ(p.settings.sim_svn, 3u);
  EXPECT_EQ(p.settings.quota, "512M");
  EXPECT_EQ(p.settings.max_datasets, 5u);
  EXPECT_EQ(p.settings.metrics_listen, "127.0.0.1:9464");
  EXPECT_FALSE(p.settings.verbose);
}

TEST(ChirondSettingsTest, CommandLineWinsOverTheFile) {
  Parsed p({"--listen", "127.0.0.1:1", "--query-budget", "9", "--sim-debug"},
           "listen = 127.0.0.1:2\nquery-budget = 8\nsim-debug = false\nstate = /s\n");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.settings.listen, "127.0.0.1:1");
  EXPECT_EQ(p.settings.query_budget, 9u);
  EXPECT_TRUE(p.settings.sim_debug);
  EXPECT_EQ(p.settings.state_dir, "/s") << "what the command line does not set comes from the file";
}

TEST(ChirondSettingsTest, BadSettingsNameLineProblemAndWayOut) {
  struct Case {
    std::string config;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {"state = /s\nlisten = x\nlissten = 1\n",
       {"chirond.conf:3: ", "unknown setting 'lissten'", "did you mean 'listen'?",
        "chirond --help"}},
      {"state-dir = /s\n", {"chirond.conf:1: ", "unknown setting", "did you mean 'state'?"}},
      {"frobnicate = 1\n", {"chirond.conf:1: ", "unknown setting 'frobnicate'; the settings"}},
      {"config = /etc/other.conf\n", {"chirond.conf:1: ", "only be given on the command line"}},
      {"help = true\n", {"chirond.conf:1: ", "only be given on the command line"}},
      {"\nworker-threads = 100\n", {"chirond.conf:2: ", "bad value for 'worker-threads'", "64"}},
      {"worker-threads = two\n", {"chirond.conf:1: ", "bad value for 'worker-threads'"}},
      {"query-budget = -1\n", {"chirond.conf:1: ", "bad value for 'query-budget'"}},
      {"query-budget = 1e3\n", {"chirond.conf:1: ", "bad value for 'query-budget'"}},
      {"platform = sgx\n", {"chirond.conf:1: ", "bad value for 'platform'", "sim"}},
      {"quota = 16X\n", {"chirond.conf:1: ", "'16X' is not a size", "16G"}},
      {"quota = 0\n", {"chirond.conf:1: ", "is not a size"}},
      {"max-datasets = 0\n", {"chirond.conf:1: ", "bad value for 'max-datasets'"}},
      {"sim-debug = yes\n", {"chirond.conf:1: ", "'sim-debug' is true or false, not 'yes'"}},
      {"verbose = 1\n", {"chirond.conf:1: ", "'verbose' is true or false"}},
      {"listen = a\nlisten = b\n", {"chirond.conf:2: ", "already set on line 1"}},
  };
  for (const Case& c : cases) {
    Parsed p({}, c.config);
    ASSERT_FALSE(p.status.ok()) << "accepted: " << c.config;
    EXPECT_EQ(p.status.code(), StatusCode::kInvalidArgument);
    for (const auto& part : c.expected) {
      EXPECT_NE(p.status.message().find(part), std::string::npos)
          << c.config << " -> " << p.status.message() << "\n  missing: " << part;
    }
  }
}

TEST(ChirondSettingsTest, PrintedSettingsCoverEveryOptionAndReadBackTheSame) {
  Parsed p({"--state", "/srv/with space", "--recipes-dir", "/r#1", "--sim-debug"},
           "quota = 2G\nquery-budget = 12\nworker-threads = 3\nport-file = /run/chirond.port\n");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  p.settings.worker = "/usr/lib/chiron/chiron-worker";
  p.settings.tsm_root = "/sys/kernel/config/tsm/report";
  const std::string printed = FormatSettings(p.settings);
  // Every key a file may set is printed (set, or as a "# key = (not set)" comment), so the
  // output cannot fall behind the options.
  for (const auto& key : ConfigurableKeys(p.app)) {
    EXPECT_TRUE(printed.find("\n" + key + " = ") != std::string::npos ||
                printed.find("\n# " + key + " = (") != std::string::npos)
        << key << " missing from\n" << printed;
  }
  Parsed again({}, printed);
  ASSERT_TRUE(again.status.ok()) << again.status.message() << "\n" << printed;
  EXPECT_EQ(FormatSettings(again.settings), printed);
  EXPECT_EQ(again.settings.state_dir, "/srv/with space");
  EXPECT_EQ(again.settings.recipes_dir, "/r#1");
  EXPECT_TRUE(again.settings.sim_debug);
  EXPECT_EQ(again.settings.query_budget, 12u);
}

TEST(ChirondSettingsTest, DefaultsMatchTheRuntimes) {
  ChirondSettings defaults;
  uint64_t quota = 0;
  ASSERT_TRUE(ParseByteSize(defaults.quota, quota));
  EXPECT_EQ(quota, store::StoreLimits{}.max_bytes_per_owner);
  EXPECT_EQ(defaults.max_datasets, store::StoreLimits{}.max_datasets_per_owner);
  EXPECT_EQ(std::string(tee::kDefaultTsmReportRoot), "/sys/kernel/config/tsm/report");
}

TEST(ChirondSettingsTest, ByteSizes) {
  uint64_t out = 0;
  EXPECT_TRUE(ParseByteSize("1048576", out));
  EXPECT_EQ(out, 1048576u);
  EXPECT_TRUE(ParseByteSize("512M", out));
  EXPECT_EQ(out, 512u << 20);
  EXPECT_TRUE(ParseByteSize("2GiB", out));
  EXPECT_EQ(out, uint64_t{2} << 30);
  EXPECT_TRUE(ParseByteSize("1T", out));
  EXPECT_EQ(out, uint64_t{1} << 40);
  for (const char* bad : {"", "0", "G", "-1G", " 1G", "1 G", "1g", "1GB", "16777216T",
                          "99999999999999999999999"}) {
    EXPECT_FALSE(ParseByteSize(bad, out)) << bad;
  }
}

// The shipped example (docs/examples/chirond.conf) parses and sets what it says.
TEST(ChirondSettingsTest, ShippedExampleParses) {
  const char* source = std::getenv("CHIRON_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  const std::string path = std::string(source) + "/docs/examples/chirond.conf";
  auto entries = ReadConfigFile(path);
  ASSERT_TRUE(entries.ok()) << entries.status().message();
  Parsed p({}, "");
  Status applied = ApplyConfigEntries(p.app, *entries, path);
  ASSERT_TRUE(applied.ok()) << applied.message();
  EXPECT_EQ(p.settings.state_dir, "/var/lib/chiron");
  EXPECT_EQ(p.settings.metrics_listen, "127.0.0.1:9464");
  EXPECT_GE(entries->size(), 10u);
}

TEST(ChirondSettingsTest, ClusterSettingsGoTogetherAndSayWhatIsMissing) {
  Parsed alone({}, "");
  ASSERT_TRUE(alone.status.ok());
  auto none = ResolvePeers(alone.settings);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());

  Parsed cluster({}, "node-listen = 0.0.0.0:7600\npeers = 10.0.0.2:7600,10.0.0.3:7600\n"
                     "cluster-policy = /etc/chiron/cluster.json\n");
  ASSERT_TRUE(cluster.status.ok()) << cluster.status.ToString();
  auto peers = ResolvePeers(cluster.settings);
  ASSERT_TRUE(peers.ok()) << peers.status().ToString();
  EXPECT_EQ(*peers, (std::vector<std::string>{"10.0.0.2:7600", "10.0.0.3:7600"}));
  // Listening on every address: the peers must be told which one to dial.
  auto wildcard = ResolveNodeAdvertise(cluster.settings);
  ASSERT_FALSE(wildcard.ok());
  EXPECT_NE(wildcard.status().message().find("--node-advertise HOST:PORT"), std::string::npos)
      << wildcard.status().ToString();
  cluster.settings.node_advertise = "10.0.0.1:7600";
  auto advertised = ResolveNodeAdvertise(cluster.settings);
  ASSERT_TRUE(advertised.ok()) << advertised.status().ToString();
  EXPECT_EQ(*advertised, "10.0.0.1:7600");
  cluster.settings.node_advertise = "10.0.0.1:0";
  EXPECT_FALSE(ResolveNodeAdvertise(cluster.settings).ok());
  Parsed named(
      {"--node-listen", "10.0.0.1:7600", "--peers", "10.0.0.2:7600", "--cluster-policy", "p.json"},
      "");
  auto derived = ResolveNodeAdvertise(named.settings);
  ASSERT_TRUE(derived.ok()) << derived.status().ToString();
  EXPECT_EQ(*derived, "");  // --node-listen's own address

  Parsed no_listener({"--peers", "10.0.0.2:7600"}, "");
  auto refused = ResolvePeers(no_listener.settings);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("need --node-listen"), std::string::npos)
      << refused.status().ToString();

  Parsed no_policy({"--node-listen", "127.0.0.1:7600"}, "");
  refused = ResolvePeers(no_policy.settings);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--cluster-policy"), std::string::npos);

  Parsed bad_peer({"--node-listen", "127.0.0.1:7600", "--cluster-policy", "p.json", "--peers",
                   "10.0.0.2:7600,,10.0.0.3"},
                  "");
  refused = ResolvePeers(bad_peer.settings);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--peers"), std::string::npos);
}

}  // namespace
}  // namespace chiron::runtime
