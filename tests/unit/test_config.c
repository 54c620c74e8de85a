/* SPDX-License-Identifier: MIT */
/* test_config.c - SOCKETBRIDGE_* variables as a stub reads them, and the allowlist. */
#include "unit.h"
#include "allowlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

Test(config, defaults_when_nothing_is_set) {
  char *envp[] = {"PATH=/bin", "HOME=/root", NULL};
  sb_config c;
  sb_diag diag = {""};
  int r = sb_config_from_env(envp, &c, &diag);
  cr_assert_eq(r, 0, "returned %d: %s", r, diag.msg);
  cr_assert_str_eq(c.token, "");
  cr_assert_str_eq(c.host, "127.0.0.1");
  cr_assert_eq(c.port, 0);
  cr_assert_str_eq(c.socket_path, "");
  cr_assert_eq(c.max_bytes, SB_DEFAULT_MAX_BYTES);
  r = sb_config_require(&c, &diag);
  cr_assert_eq(r, SB_ENOENT, "require returned %d", r);
  cr_assert(strstr(diag.msg, "SOCKETBRIDGE_TOKEN"), "diag: %s", diag.msg);
  sb_config_free(&c);
}

Test(config, reads_every_variable) {
  char *envp[] = {"SOCKETBRIDGE_TOKEN=" TEST_TOKEN,
                  "SOCKETBRIDGE_HOST=::1",
                  "SOCKETBRIDGE_PORT=65535",
                  "SOCKETBRIDGE_SOCKET=/run/sb.sock",
                  "SOCKETBRIDGE_MAX_BYTES=4096",
                  "SOCKETBRIDGE_ALLOWLIST=127.0.0.1,10.0.0.0/8",
                  "SOCKETBRIDGE_PORT=1", /* the first one wins, as getenv */
                  NULL};
  sb_config c;
  sb_diag diag = {""};
  int r = sb_config_from_env(envp, &c, &diag);
  cr_assert_eq(r, 0, "returned %d: %s", r, diag.msg);
  cr_assert_str_eq(c.token, TEST_TOKEN);
  cr_assert_str_eq(c.host, "::1");
  cr_assert_eq(c.port, 65535);
  cr_assert_str_eq(c.socket_path, "/run/sb.sock");
  cr_assert_eq(c.max_bytes, 4096);
  cr_assert_eq(sb_config_require(&c, &diag), 0, "require: %s", diag.msg);
  sb_config_free(&c);
}

Test(config, reads_the_process_environment_when_envp_is_null) {
  setenv("SOCKETBRIDGE_PORT", "4711", 1);
  sb_config c;
  int r = sb_config_from_env(NULL, &c, NULL);
  cr_assert_eq(r, 0);
  cr_assert_eq(c.port, 4711);
  sb_config_free(&c);
}

Test(config, require_names_a_missing_address) {
  char *envp[] = {"SOCKETBRIDGE_TOKEN=" TEST_TOKEN, NULL};
  sb_config c;
  sb_diag diag = {""};
  cr_assert_eq(sb_config_from_env(envp, &c, &diag), 0);
  int r = sb_config_require(&c, &diag);
  cr_assert_eq(r, SB_ENOENT, "returned %d", r);
  cr_assert(strstr(diag.msg, "SOCKETBRIDGE_SOCKET") &&
                strstr(diag.msg, "SOCKETBRIDGE_PORT"),
            "diag: %s", diag.msg);
  cr_assert(strstr(diag.msg, TEST_TOKEN) == NULL, "diag shows the token");
  sb_config_free(&c);
}

Test(config, require_is_happy_with_a_port_or_a_socket) {
  char *a[] = {"SOCKETBRIDGE_TOKEN=" TEST_TOKEN, "SOCKETBRIDGE_PORT=80", NULL};
  char *b[] = {"SOCKETBRIDGE_TOKEN=" TEST_TOKEN, "SOCKETBRIDGE_SOCKET=/s", NULL};
  sb_config c;
  cr_assert_eq(sb_config_from_env(a, &c, NULL), 0);
  cr_assert_eq(sb_config_require(&c, NULL), 0);
  sb_config_free(&c);
  cr_assert_eq(sb_config_from_env(b, &c, NULL), 0);
  cr_assert_eq(sb_config_require(&c, NULL), 0);
  sb_config_free(&c);
}

typedef struct env_case {
  char entry[200];
  char diag[100]; /* what the diag must contain */
} env_case;

/* "/" and 107 more bytes: one over what sun_path holds. */
#define LONG_PATH "/" A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 "aaaaaaa"
#define A10 "aaaaaaaaaa"

ParameterizedTestParameters(config, refuses_each_malformed_value_naming_the_variable) {
  static env_case cases[] = {
      {"SOCKETBRIDGE_TOKEN=", "SOCKETBRIDGE_TOKEN: set but empty"},
      {"SOCKETBRIDGE_TOKEN=0123456789abcdef",
       "SOCKETBRIDGE_TOKEN: not 64 lowercase hex digits"},
      {"SOCKETBRIDGE_TOKEN="
       "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
       "SOCKETBRIDGE_TOKEN: not 64 lowercase hex digits"},
      {"SOCKETBRIDGE_TOKEN=" TEST_TOKEN "\n",
       "SOCKETBRIDGE_TOKEN: not 64 lowercase hex digits"},
      {"SOCKETBRIDGE_TOKEN= " TEST_TOKEN,
       "SOCKETBRIDGE_TOKEN: not 64 lowercase hex digits"},
      {"SOCKETBRIDGE_PORT=", "SOCKETBRIDGE_PORT: set but empty"},
      {"SOCKETBRIDGE_PORT=0", "SOCKETBRIDGE_PORT: \"0\" is not a port number (1..65535)"},
      {"SOCKETBRIDGE_PORT=65536", "SOCKETBRIDGE_PORT: \"65536\" is not a port number"},
      {"SOCKETBRIDGE_PORT=99999999999999999999", "SOCKETBRIDGE_PORT:"},
      {"SOCKETBRIDGE_PORT=-1", "SOCKETBRIDGE_PORT: \"-1\""},
      {"SOCKETBRIDGE_PORT=+80", "SOCKETBRIDGE_PORT: \"+80\""},
      {"SOCKETBRIDGE_PORT= 80", "SOCKETBRIDGE_PORT: \" 80\""},
      {"SOCKETBRIDGE_PORT=80 ", "SOCKETBRIDGE_PORT: \"80 \""},
      {"SOCKETBRIDGE_PORT=0x50", "SOCKETBRIDGE_PORT: \"0x50\""},
      {"SOCKETBRIDGE_PORT=http", "SOCKETBRIDGE_PORT: \"http\""},
      {"SOCKETBRIDGE_PORT=8\x01", "SOCKETBRIDGE_PORT: \"8\\x01\""},
      {"SOCKETBRIDGE_HOST=", "SOCKETBRIDGE_HOST: set but empty"},
      {"SOCKETBRIDGE_HOST=localhost",
       "SOCKETBRIDGE_HOST: \"localhost\" is not an IPv4 or IPv6 address"},
      {"SOCKETBRIDGE_HOST=127.0.0.256", "SOCKETBRIDGE_HOST: \"127.0.0.256\""},
      {"SOCKETBRIDGE_HOST=127.1", "SOCKETBRIDGE_HOST: \"127.1\""},
      {"SOCKETBRIDGE_HOST=::1/128", "SOCKETBRIDGE_HOST: \"::1/128\""},
      {"SOCKETBRIDGE_HOST=[::1]", "SOCKETBRIDGE_HOST: \"[::1]\""},
      {"SOCKETBRIDGE_SOCKET=", "SOCKETBRIDGE_SOCKET: set but empty"},
      {"SOCKETBRIDGE_SOCKET=run/sb.sock",
       "SOCKETBRIDGE_SOCKET: \"run/sb.sock\" is not an absolute path"},
      {"SOCKETBRIDGE_SOCKET=" LONG_PATH,
       "SOCKETBRIDGE_SOCKET: path is 108 bytes, over the 107"},
      {"SOCKETBRIDGE_MAX_BYTES=", "SOCKETBRIDGE_MAX_BYTES: set but empty"},
      {"SOCKETBRIDGE_MAX_BYTES=4095",
       "SOCKETBRIDGE_MAX_BYTES: \"4095\" is not a number of bytes in 4096..268435456"},
      {"SOCKETBRIDGE_MAX_BYTES=268435457", "SOCKETBRIDGE_MAX_BYTES: \"268435457\""},
      {"SOCKETBRIDGE_MAX_BYTES=1M", "SOCKETBRIDGE_MAX_BYTES: \"1M\""},
      {"SOCKETBRIDGE_MAX_BYTES=99999999999999999999999", "SOCKETBRIDGE_MAX_BYTES:"},
  };
  return cr_make_param_array(env_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(env_case *c, config, refuses_each_malformed_value_naming_the_variable) {
  /* A valid token is always in the environment too: no diag may show it. */
  char *envp[] = {c->entry, "SOCKETBRIDGE_TOKEN=" TEST_TOKEN, NULL};
  sb_config cfg;
  sb_diag diag = {""};
  int r = sb_config_from_env(envp, &cfg, &diag);
  cr_assert_eq(r, SB_EINVAL, "%s: returned %d, want EINVAL", c->entry, r);
  cr_assert(strstr(diag.msg, c->diag) != NULL, "%s: diag \"%s\" lacks \"%s\"", c->entry,
            diag.msg, c->diag);
  cr_assert(strstr(diag.msg, "0123456789") == NULL, "%s: diag shows a token: %s",
            c->entry, diag.msg);
  sb_config_free(&cfg);
}

/* The allowlist is the supervisor's business: whatever it holds, the stub
 * side reads past it (socketbridge run refuses a malformed one). */
Test(config, the_allowlist_is_the_supervisors_and_never_stops_a_stub) {
  char *envp[] = {"SOCKETBRIDGE_ALLOWLIST=localhost,::1,", "SOCKETBRIDGE_PORT=9", NULL};
  sb_config c;
  sb_diag diag = {""};
  cr_assert_eq(sb_config_from_env(envp, &c, &diag), 0, "%s", diag.msg);
  cr_assert_eq(c.port, 9);
  sb_config_free(&c);
}

Test(config, accepts_the_edges_of_each_range) {
  char *envp[] = {"SOCKETBRIDGE_PORT=1", "SOCKETBRIDGE_MAX_BYTES=268435456",
                  "SOCKETBRIDGE_HOST=0.0.0.0", NULL, NULL};
  /* 107 bytes is the longest socket path that fits. */
  char path[200] = "SOCKETBRIDGE_SOCKET=" LONG_PATH;
  path[strlen(path) - 1] = '\0';
  envp[3] = path;
  sb_config c;
  sb_diag diag = {""};
  cr_assert_eq(sb_config_from_env(envp, &c, &diag), 0, "%s", diag.msg);
  cr_assert_eq(c.port, 1);
  cr_assert_eq(c.max_bytes, SB_MAX_MAX_BYTES);
  cr_assert_eq(strlen(c.socket_path), 107);
  sb_config_free(&c);
}

Test(config, an_abstract_socket_name_is_at_name) {
  char *envp[] = {"SOCKETBRIDGE_SOCKET=@bridge", NULL};
  sb_config c;
  sb_diag diag = {""};
  cr_assert_eq(sb_config_from_env(envp, &c, &diag), 0, "%s", diag.msg);
  cr_assert_str_eq(c.socket_path, "@bridge");
  sb_config_free(&c);
  char *bare[] = {"SOCKETBRIDGE_SOCKET=@", NULL};
  cr_assert_eq(sb_config_from_env(bare, &c, &diag), SB_EINVAL);
  cr_assert_not_null(strstr(diag.msg, "not an absolute path or @name"), "%s", diag.msg);
  /* The address: a NUL, the name, and a length that ends it. */
  struct sockaddr_un sa;
  uint32_t len;
  cr_assert_eq(sb_unix_address("@bridge", &sa, &len), 0);
  cr_assert_eq(sa.sun_path[0], '\0');
  cr_assert_eq(memcmp(sa.sun_path + 1, "bridge", 6), 0);
  cr_assert_eq(len, offsetof(struct sockaddr_un, sun_path) + 7);
  cr_assert_eq(sb_unix_address("/run/s", &sa, &len), 0);
  cr_assert_str_eq(sa.sun_path, "/run/s");
  cr_assert_eq(sb_unix_address("@", &sa, &len), SB_EINVAL);
  cr_assert_eq(sb_unix_address(LONG_PATH, &sa, &len), -ENAMETOOLONG);
}

/* ---- the allowlist ----------------------------------------------------- */

static struct sockaddr_in v4(const char *a) {
  struct sockaddr_in s = {.sin_family = AF_INET};
  cr_assert_eq(inet_pton(AF_INET, a, &s.sin_addr), 1, "%s", a);
  return s;
}

static struct sockaddr_in6 v6(const char *a) {
  struct sockaddr_in6 s = {.sin6_family = AF_INET6};
  cr_assert_eq(inet_pton(AF_INET6, a, &s.sin6_addr), 1, "%s", a);
  return s;
}

Test(allowlist, parses_addresses_and_prefixes) {
  sb_allowlist l;
  sb_diag diag = {""};
  int r = sb_allowlist_parse("127.0.0.1, 10.0.0.0/8 ,::1,fe80::/10,0.0.0.0/0", &l, &diag);
  cr_assert_eq(r, 0, "returned %d: %s", r, diag.msg);
  cr_assert_eq(l.n, 5, "%zu entries", l.n);
  cr_assert(l.v[0].family == AF_INET && l.v[0].prefix == 32, "entry 0: %d/%u",
            l.v[0].family, l.v[0].prefix);
  cr_assert(l.v[1].family == AF_INET && l.v[1].prefix == 8, "entry 1: %d/%u",
            l.v[1].family, l.v[1].prefix);
  cr_assert(l.v[2].family == AF_INET6 && l.v[2].prefix == 128, "entry 2");
  cr_assert(l.v[3].family == AF_INET6 && l.v[3].prefix == 10, "entry 3");
  cr_assert(l.v[4].prefix == 0, "entry 4");
  sb_allowlist_free(&l);
  cr_assert_eq(sb_allowlist_parse("", &l, NULL), 0);
  cr_assert_eq(l.n, 0);
  sb_allowlist_free(&l);
}

typedef struct allow_bad {
  char text[80];
  char diag[80];
} allow_bad;

ParameterizedTestParameters(allowlist, refuses_malformed_entries) {
  static allow_bad cases[] = {
      {",", "entry 1 is empty"},
      {"127.0.0.1,,::1", "entry 2 is empty"},
      {"127.0.0.1/", "prefix must be 0..32"},
      {"127.0.0.1/-1", "prefix must be 0..32"},
      {"::1/129", "prefix must be 0..128"},
      {"::1/1a", "prefix must be 0..128"},
      {"1.2.3.4/8/8", "prefix must be 0..32"},
      {"example.com", "\"example.com\": not an IPv4 or IPv6 address"},
      {"1.2.3", "not an IPv4 or IPv6 address"},
      {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc", "too long"},
  };
  return cr_make_param_array(allow_bad, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(allow_bad *c, allowlist, refuses_malformed_entries) {
  sb_allowlist l;
  sb_diag diag = {""};
  int r = sb_allowlist_parse(c->text, &l, &diag);
  cr_assert_eq(r, SB_EINVAL, "\"%s\": returned %d", c->text, r);
  cr_assert(strstr(diag.msg, c->diag) != NULL, "\"%s\": diag \"%s\" lacks \"%s\"",
            c->text, diag.msg, c->diag);
  cr_assert(l.v == NULL && l.n == 0, "\"%s\": list not left empty", c->text);
}

Test(allowlist, matches_v4_peers_by_prefix) {
  sb_allowlist l;
  cr_assert_eq(sb_allowlist_parse("127.0.0.1,10.0.0.0/8,192.168.1.128/25", &l, NULL), 0);
  struct sockaddr_in yes[] = {v4("127.0.0.1"), v4("10.1.2.3"), v4("10.255.255.255"),
                              v4("192.168.1.200")};
  struct sockaddr_in no[] = {v4("127.0.0.2"), v4("11.0.0.0"), v4("192.168.1.127"),
                             v4("0.0.0.0")};
  for (size_t i = 0; i < 4; i++) {
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &yes[i].sin_addr, a, sizeof a);
    cr_assert(sb_allowlist_match(&l, &yes[i]), "%s refused", a);
    inet_ntop(AF_INET, &no[i].sin_addr, a, sizeof a);
    cr_assert(!sb_allowlist_match(&l, &no[i]), "%s allowed", a);
  }
  sb_allowlist_free(&l);
}

Test(allowlist, matches_v6_peers_by_prefix) {
  sb_allowlist l;
  cr_assert_eq(sb_allowlist_parse("::1,fd00::/8,2001:db8::/33", &l, NULL), 0);
  const char *yes[] = {"::1", "fd12:3456::1", "2001:db8:7fff::1"};
  const char *no[] = {"::2", "fe00::1", "2001:db8:8000::1", "::"};
  for (size_t i = 0; i < 3; i++) {
    struct sockaddr_in6 a = v6(yes[i]);
    cr_assert(sb_allowlist_match(&l, &a), "%s refused", yes[i]);
  }
  for (size_t i = 0; i < 4; i++) {
    struct sockaddr_in6 a = v6(no[i]);
    cr_assert(!sb_allowlist_match(&l, &a), "%s allowed", no[i]);
  }
  sb_allowlist_free(&l);
}

Test(allowlist, a_v4_mapped_v6_peer_matches_v4_entries) {
  sb_allowlist l;
  cr_assert_eq(sb_allowlist_parse("127.0.0.0/8", &l, NULL), 0);
  struct sockaddr_in6 mapped = v6("::ffff:127.0.0.1");
  struct sockaddr_in6 other = v6("::ffff:128.0.0.1");
  struct sockaddr_in6 compat = v6("::127.0.0.1"); /* not mapped */
  cr_assert(sb_allowlist_match(&l, &mapped), "::ffff:127.0.0.1 refused");
  cr_assert(!sb_allowlist_match(&l, &other), "::ffff:128.0.0.1 allowed");
  cr_assert(!sb_allowlist_match(&l, &compat), "::127.0.0.1 allowed");
  sb_allowlist_free(&l);
}

Test(allowlist, a_v4_peer_matches_a_v4_mapped_v6_entry) {
  sb_allowlist l;
  cr_assert_eq(sb_allowlist_parse("::ffff:10.0.0.0/104", &l, NULL), 0);
  struct sockaddr_in a = v4("10.9.9.9"), b = v4("11.0.0.1");
  cr_assert(sb_allowlist_match(&l, &a), "10.9.9.9 refused");
  cr_assert(!sb_allowlist_match(&l, &b), "11.0.0.1 allowed");
  sb_allowlist_free(&l);
}

Test(allowlist, v4_entries_never_match_plain_v6_peers) {
  sb_allowlist l;
  cr_assert_eq(sb_allowlist_parse("0.0.0.0/0", &l, NULL), 0);
  struct sockaddr_in6 a = v6("::1");
  struct sockaddr_in b = v4("1.2.3.4");
  cr_assert(!sb_allowlist_match(&l, &a), "::1 matched 0.0.0.0/0");
  cr_assert(sb_allowlist_match(&l, &b), "1.2.3.4 refused by 0.0.0.0/0");
  sb_allowlist_free(&l);
}

Test(allowlist, an_empty_list_and_other_families_match_nothing) {
  sb_allowlist l = {NULL, 0};
  struct sockaddr_in a = v4("127.0.0.1");
  cr_assert(!sb_allowlist_match(&l, &a), "an empty list allowed a peer");
  cr_assert(!sb_allowlist_match(NULL, &a), "a NULL list allowed a peer");
  cr_assert_eq(sb_allowlist_parse("::/0,0.0.0.0/0", &l, NULL), 0);
  struct sockaddr un = {.sa_family = AF_UNIX};
  cr_assert(!sb_allowlist_match(&l, &un), "an AF_UNIX address matched");
  sb_allowlist_free(&l);
}
