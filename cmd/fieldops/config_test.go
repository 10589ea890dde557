package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Every secret in these tests holds secretMark, so that a test can tell
// that no error shows one.
const secretMark = "s3cr3t"

const (
	testDatabaseURL = "postgres://fieldops:" + secretMark + "@localhost:5432/fieldops"
	testRedisURL    = "redis://:" + secretMark + "@localhost:6379/0"
)

// requiredEnv sets the secrets that have no default.
var requiredEnv = []string{
	"FIELDOPS_DATABASE_URL=" + testDatabaseURL,
	"FIELDOPS_REDIS_URL=" + testRedisURL,
}

// testTOTPKey is the base64 of 32 bytes.
var testTOTPKey = "czNjcjN0" + strings.Repeat("A", 35) + "=" // secretMark, then zero bytes

// MustWriteFile writes content to a file named name in dir and returns its path.
func MustWriteFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// loadTestConfig loads the YAML doc (none if empty) and the environment
// env. In both, "$DIR" stands for a temporary directory holding the
// files named in files.
func loadTestConfig(t *testing.T, doc string, env []string, files map[string]string) (Config, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		MustWriteFile(t, dir, name, content)
	}
	path := ""
	if doc != "" {
		path = MustWriteFile(t, dir, "fieldops.yaml", strings.ReplaceAll(doc, "$DIR", dir))
	}
	environ := make([]string, len(env))
	for i, kv := range env {
		environ[i] = strings.ReplaceAll(kv, "$DIR", dir)
	}
	return LoadConfig(path, environ)
}

// withRequired returns the defaults with the required secrets of requiredEnv.
func withRequired() Config {
	c := DefaultConfig()
	c.Database.URL = testDatabaseURL
	c.Redis.URL = testRedisURL
	return c
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		env   []string
		files map[string]string
		want  func() Config
	}{
		{
			name: "OKDefaults",
			env:  requiredEnv,
			want: withRequired,
		},
		{
			name: "OKYAMLOverridesDefaults",
			doc: `
http:
  addr: ":9090"
  secure_cookies: false
  shutdown_timeout: 1m30s
database:
  max_conns: 50
telegram:
  mode: webhook
  webhook_secret: hook_` + secretMark + `
smtp:
  host: smtp.example.com
  port: 465
  tls: tls
log:
  level: debug
  format: json
`,
			env: requiredEnv,
			want: func() Config {
				c := withRequired()
				c.HTTP.Addr = ":9090"
				c.HTTP.SecureCookies = false
				c.HTTP.ShutdownTimeout = 90 * time.Second
				c.Database.MaxConns = 50
				c.Telegram.Mode = "webhook"
				c.Telegram.WebhookSecret = "hook_" + secretMark
				c.SMTP.Host = "smtp.example.com"
				c.SMTP.Port = 465
				c.SMTP.TLS = "tls"
				c.Log = LogConfig{Level: "debug", Format: "json"}
				return c
			},
		},
		{
			name: "OKEnvOverridesYAML",
			doc: `
http:
  addr: ":9090"
  secure_cookies: false
database:
  url: postgres://yaml@localhost/fieldops
  max_conns: 50
log:
  level: debug
`,
			env: []string{
				"FIELDOPS_HTTP_ADDR=127.0.0.1:7070",
				"FIELDOPS_HTTP_SECURE_COOKIES=true",
				"FIELDOPS_HTTP_SHUTDOWN_TIMEOUT=2s",
				"FIELDOPS_DATABASE_MAX_CONNS=20",
				"FIELDOPS_LOG_LEVEL=warn",
				"FIELDOPS_SMTP_PORT=2525",
				"FIELDOPS_SECURITY_TOTP_KEY=" + testTOTPKey,
				"FIELDOPS_LOG_LEVEL=error", // the last one wins
				"OTHER_LOG_LEVEL=debug",
				"FIELDOPS_DATABASE_URL=" + testDatabaseURL,
				"FIELDOPS_REDIS_URL=" + testRedisURL,
			},
			want: func() Config {
				c := withRequired()
				c.HTTP.Addr = "127.0.0.1:7070"
				c.HTTP.ShutdownTimeout = 2 * time.Second
				c.Database.MaxConns = 20
				c.SMTP.Port = 2525
				c.Security.TOTPKey = testTOTPKey
				c.Log.Level = "error"
				return c
			},
		},
		{
			name: "OKUnsetEnvLeavesYAML",
			doc: `
http:
  addr: ":9090"
log:
  level: debug
`,
			env: append([]string{"FIELDOPS_LOG_LEVEL=", "FIELDOPS_TELEGRAM_TOKEN="}, requiredEnv...),
			want: func() Config {
				c := withRequired()
				c.HTTP.Addr = ":9090"
				c.Log.Level = "debug"
				return c
			},
		},
		{
			// A key with no value is unset, like an empty variable.
			name: "OKYAMLNullLeavesDefault",
			doc:  "http:\n  addr:\nlog:\n",
			env:  requiredEnv,
			want: withRequired,
		},
		{
			name: "OKEmptyYAML",
			doc:  "# nothing but a comment\n",
			env:  requiredEnv,
			want: withRequired,
		},
		{
			name:  "OKSecretFileFromEnv",
			env:   []string{"FIELDOPS_DATABASE_URL_FILE=$DIR/db", "FIELDOPS_REDIS_URL=" + testRedisURL},
			files: map[string]string{"db": "\n  " + testDatabaseURL + "\n\n"},
			want: func() Config {
				c := withRequired()
				c.Database.URLFile = "$DIR/db"
				return c
			},
		},
		{
			name: "OKSecretFileFromYAML",
			doc: `
redis:
  url_file: $DIR/redis
security:
  totp_key_file: $DIR/totp
`,
			env:   []string{"FIELDOPS_DATABASE_URL=" + testDatabaseURL},
			files: map[string]string{"redis": testRedisURL + "\n", "totp": testTOTPKey + "\n"},
			want: func() Config {
				c := withRequired()
				c.Redis.URLFile = "$DIR/redis"
				c.Security.TOTPKey = testTOTPKey
				c.Security.TOTPKeyFile = "$DIR/totp"
				return c
			},
		},
		{
			// The environment's value replaces the file's _file, which
			// is then not read.
			name: "OKEnvSecretReplacesYAMLFile",
			doc: `
database:
  url_file: $DIR/missing
`,
			env:  requiredEnv,
			want: withRequired,
		},
		{
			name: "OKEnvSecretFileReplacesYAMLValue",
			doc: `
redis:
  url: redis://yaml:6379
`,
			env:   []string{"FIELDOPS_DATABASE_URL=" + testDatabaseURL, "FIELDOPS_REDIS_URL_FILE=$DIR/redis"},
			files: map[string]string{"redis": testRedisURL},
			want: func() Config {
				c := withRequired()
				c.Redis.URLFile = "$DIR/redis"
				return c
			},
		},
		{
			name: "OKWebhookSecretFile",
			doc: `
telegram:
  token: "123:` + secretMark + `"
  bot_username: fieldops_bot
  mode: webhook
  webhook_secret_file: $DIR/hook
`,
			env:   requiredEnv,
			files: map[string]string{"hook": "hook-" + secretMark},
			want: func() Config {
				c := withRequired()
				c.Telegram.Token = "123:" + secretMark
				c.Telegram.BotUsername = "fieldops_bot"
				c.Telegram.Mode = "webhook"
				c.Telegram.WebhookSecret = "hook-" + secretMark
				c.Telegram.WebhookSecretFile = "$DIR/hook"
				return c
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadTestConfig(t, tt.doc, tt.env, tt.files)
			if err != nil {
				t.Fatal(err)
			}
			// The _file fields keep the path, whose $DIR the test cannot know.
			for _, s := range got.secrets() {
				if dir, name := filepath.Split(*s.file); dir != "" {
					*s.file = "$DIR/" + name
				}
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("LoadConfig:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// LoadConfig reads the environment it is given, not the process's.
func TestLoadConfig_ProcessEnv(t *testing.T) {
	t.Setenv("FIELDOPS_LOG_LEVEL", "loud")
	t.Run("OKNotRead", func(t *testing.T) {
		got, err := LoadConfig("", requiredEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got.Log.Level != "info" {
			t.Errorf("log.level = %q, want info", got.Log.Level)
		}
	})
	t.Run("ErrNotReadEvenWhenNil", func(t *testing.T) {
		_, err := LoadConfig("", nil)
		if err == nil || !strings.Contains(err.Error(), "database.url (FIELDOPS_DATABASE_URL) is required") {
			t.Errorf("err = %v, want database.url is required", err)
		}
	})
}

func TestLoadConfig_Err(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		env   []string
		files map[string]string
		want  []string // substrings of the error
	}{
		// Sources.
		{
			name: "ErrMissingYAMLFile",
			doc:  "", // replaced below by a path that does not exist
			want: []string{"config: open ", "nope.yaml", "no such file"},
		},
		{
			name: "ErrYAMLSyntax",
			doc:  "http:\n  addr: \":8080\"\nlog:\n  level: \"info\n",
			env:  requiredEnv,
			want: []string{"fieldops.yaml: yaml: line 4: "},
		},
		{
			name: "ErrYAMLUnknownKey",
			doc:  "http:\n  addr: \":8080\"\n  adr: \":9090\"\n",
			env:  requiredEnv,
			want: []string{"fieldops.yaml line 3: unknown key http.adr: allowed addr, base_url, secure_cookies, shutdown_timeout, trusted_proxies"},
		},
		{
			name: "ErrTrustedProxyNotCIDR",
			env:  append([]string{"FIELDOPS_HTTP_TRUSTED_PROXIES=10.0.0.0/8,proxy.local"}, requiredEnv...),
			want: []string{"http.trusted_proxies (FIELDOPS_HTTP_TRUSTED_PROXIES)", "proxy.local", "CIDR"},
		},
		{
			name: "ErrYAMLUnknownSection",
			doc:  "log:\n  level: info\nlogging:\n  level: info\n",
			env:  requiredEnv,
			want: []string{"line 3: unknown key logging: allowed http, database,"},
		},
		{
			name: "ErrYAMLSectionNotMapping",
			doc:  "http: 8080\n",
			env:  requiredEnv,
			want: []string{"line 1: http is not a mapping: allowed keys addr,"},
		},
		{
			name: "ErrYAMLBadDuration",
			doc:  "http:\n  shutdown_timeout: soon\n",
			env:  requiredEnv,
			want: []string{`fieldops.yaml line 2: http.shutdown_timeout (FIELDOPS_HTTP_SHUTDOWN_TIMEOUT) is "soon": allowed a duration`},
		},
		{
			name: "ErrYAMLDurationWithoutUnit",
			doc:  "http:\n  shutdown_timeout: 15\n",
			env:  requiredEnv,
			want: []string{`http.shutdown_timeout (FIELDOPS_HTTP_SHUTDOWN_TIMEOUT) is "15": allowed a duration`},
		},
		{
			name: "ErrYAMLBadNumber",
			doc:  "database:\n  max_conns: many\n",
			env:  requiredEnv,
			want: []string{`line 2: database.max_conns (FIELDOPS_DATABASE_MAX_CONNS) is "many": allowed a whole number`},
		},
		{
			name: "ErrYAMLSecretNotAValue",
			doc:  "database:\n  url: [\"" + testDatabaseURL + "\"]\n",
			want: []string{"line 2: database.url (FIELDOPS_DATABASE_URL) is a list: allowed a string"},
		},
		{
			name: "ErrEnvBadDuration",
			env:  append([]string{"FIELDOPS_HTTP_SHUTDOWN_TIMEOUT=soon"}, requiredEnv...),
			want: []string{`config: http.shutdown_timeout (FIELDOPS_HTTP_SHUTDOWN_TIMEOUT) is "soon": allowed a duration`},
		},
		{
			name: "ErrEnvBadBool",
			env:  append([]string{"FIELDOPS_HTTP_SECURE_COOKIES=yes"}, requiredEnv...),
			want: []string{`config: http.secure_cookies (FIELDOPS_HTTP_SECURE_COOKIES) is "yes": allowed true or false`},
		},
		{
			name: "ErrEnvBadNumber",
			env:  append([]string{"FIELDOPS_SMTP_PORT=smtp"}, requiredEnv...),
			want: []string{`config: smtp.port (FIELDOPS_SMTP_PORT) is "smtp": allowed a whole number`},
		},
		{
			name: "ErrBothValueAndFileInYAML",
			doc:  "database:\n  url: " + testDatabaseURL + "\n  url_file: $DIR/db\n",
			env:  []string{"FIELDOPS_REDIS_URL=" + testRedisURL},
			want: []string{"fieldops.yaml: database.url and database.url_file are both set: set one"},
		},
		{
			name:  "ErrBothValueAndFileInEnv",
			env:   []string{"FIELDOPS_DATABASE_URL=" + testDatabaseURL, "FIELDOPS_REDIS_URL=" + testRedisURL, "FIELDOPS_REDIS_URL_FILE=$DIR/redis"},
			files: map[string]string{"redis": testRedisURL},
			want:  []string{"config: FIELDOPS_REDIS_URL and FIELDOPS_REDIS_URL_FILE are both set: set one"},
		},
		{
			name: "ErrUnreadableFileFromEnv",
			env:  []string{"FIELDOPS_DATABASE_URL_FILE=$DIR/missing", "FIELDOPS_REDIS_URL=" + testRedisURL},
			want: []string{"config: database.url_file (FIELDOPS_DATABASE_URL_FILE): cannot read ", "/missing\": no such file or directory"},
		},
		{
			name: "ErrUnreadableFileFromYAML",
			doc:  "smtp:\n  password_file: $DIR\n",
			env:  requiredEnv,
			want: []string{"config: smtp.password_file (FIELDOPS_SMTP_PASSWORD_FILE): cannot read ", "is a directory"},
		},
		{
			name:  "ErrEmptySecretFile",
			env:   append([]string{"FIELDOPS_TELEGRAM_TOKEN_FILE=$DIR/token"}, requiredEnv...),
			files: map[string]string{"token": " \n"},
			want:  []string{"config: telegram.token_file (FIELDOPS_TELEGRAM_TOKEN_FILE): ", "/token\" is empty"},
		},

		// Validation, in the order of config.example.yaml.
		{
			name: "ErrFirstInExampleOrder",
			env:  []string{"FIELDOPS_LOG_LEVEL=loud", "FIELDOPS_HTTP_ADDR=nowhere"},
			want: []string{`config: http.addr (FIELDOPS_HTTP_ADDR) is "nowhere": allowed host:port`},
		},
		{
			name: "ErrHTTPAddrPort",
			env:  append([]string{"FIELDOPS_HTTP_ADDR=:99999"}, requiredEnv...),
			want: []string{`config: http.addr (FIELDOPS_HTTP_ADDR) is ":99999": allowed host:port`},
		},
		{
			name: "ErrBaseURLScheme",
			env:  append([]string{"FIELDOPS_HTTP_BASE_URL=ftp://example.com"}, requiredEnv...),
			want: []string{`config: http.base_url (FIELDOPS_HTTP_BASE_URL) is "ftp://example.com": allowed an http:// or https:// URL`},
		},
		{
			name: "ErrBaseURLRelative",
			env:  append([]string{"FIELDOPS_HTTP_BASE_URL=/fieldops"}, requiredEnv...),
			want: []string{`config: http.base_url (FIELDOPS_HTTP_BASE_URL) is "/fieldops"`},
		},
		{
			name: "ErrShutdownTimeoutZero",
			doc:  "http:\n  shutdown_timeout: 0s\n",
			env:  requiredEnv,
			want: []string{`config: http.shutdown_timeout (FIELDOPS_HTTP_SHUTDOWN_TIMEOUT) is 0s: allowed a duration above zero`},
		},
		{
			name: "ErrDatabaseURLRequired",
			env:  []string{"FIELDOPS_REDIS_URL=" + testRedisURL},
			want: []string{"config: database.url (FIELDOPS_DATABASE_URL) is required: a postgres:// URL, or database.url_file naming a file that holds one"},
		},
		{
			name: "ErrDatabaseURLScheme",
			env:  []string{"FIELDOPS_DATABASE_URL=mysql://root:" + secretMark + "@localhost/fieldops", "FIELDOPS_REDIS_URL=" + testRedisURL},
			want: []string{"config: database.url (FIELDOPS_DATABASE_URL) is not valid (value hidden): allowed a postgres:// or postgresql:// URL"},
		},
		{
			name: "ErrDatabaseURLKeywordValue",
			env:  []string{"FIELDOPS_DATABASE_URL=host=localhost password=" + secretMark, "FIELDOPS_REDIS_URL=" + testRedisURL},
			want: []string{"config: database.url (FIELDOPS_DATABASE_URL) is not valid (value hidden)"},
		},
		{
			name: "ErrDatabaseURLUnparsable",
			env:  []string{"FIELDOPS_DATABASE_URL=postgres://u:" + secretMark + "@[::1", "FIELDOPS_REDIS_URL=" + testRedisURL},
			want: []string{"config: database.url (FIELDOPS_DATABASE_URL) is not valid (value hidden)"},
		},
		{
			name: "ErrMaxConnsZero",
			doc:  "database:\n  max_conns: 0\n",
			env:  requiredEnv,
			want: []string{"config: database.max_conns (FIELDOPS_DATABASE_MAX_CONNS) is 0: allowed 1 to 200"},
		},
		{
			name: "ErrMaxConnsTooMany",
			env:  append([]string{"FIELDOPS_DATABASE_MAX_CONNS=201"}, requiredEnv...),
			want: []string{"config: database.max_conns (FIELDOPS_DATABASE_MAX_CONNS) is 201: allowed 1 to 200"},
		},
		{
			name: "ErrRedisURLRequired",
			env:  []string{"FIELDOPS_DATABASE_URL=" + testDatabaseURL},
			want: []string{"config: redis.url (FIELDOPS_REDIS_URL) is required: a redis://, rediss:// or unix:// URL, or redis.url_file naming"},
		},
		{
			name: "ErrRedisURLScheme",
			env:  []string{"FIELDOPS_DATABASE_URL=" + testDatabaseURL, "FIELDOPS_REDIS_URL=http://:" + secretMark + "@localhost:6379"},
			want: []string{"config: redis.url (FIELDOPS_REDIS_URL) is not valid (value hidden): allowed a redis://, rediss:// or unix:// URL"},
		},
		{
			name: "ErrTelegramAPIURL",
			env:  append([]string{"FIELDOPS_TELEGRAM_API_URL=api.telegram.org"}, requiredEnv...),
			want: []string{`config: telegram.api_url (FIELDOPS_TELEGRAM_API_URL) is "api.telegram.org": allowed an http:// or https:// URL`},
		},
		{
			name: "ErrTelegramMode",
			env:  append([]string{"FIELDOPS_TELEGRAM_MODE=push"}, requiredEnv...),
			want: []string{`config: telegram.mode (FIELDOPS_TELEGRAM_MODE) is "push": allowed polling, webhook`},
		},
		{
			name: "ErrWebhookWithoutSecret",
			env:  append([]string{"FIELDOPS_TELEGRAM_MODE=webhook"}, requiredEnv...),
			want: []string{"config: telegram.webhook_secret (FIELDOPS_TELEGRAM_WEBHOOK_SECRET) is required when telegram.mode is webhook: 1 to 256 characters of A-Z, a-z, 0-9, _ and -, or telegram.webhook_secret_file naming"},
		},
		{
			name: "ErrWebhookSecretChars",
			env:  append([]string{"FIELDOPS_TELEGRAM_MODE=webhook", "FIELDOPS_TELEGRAM_WEBHOOK_SECRET=" + secretMark + "!"}, requiredEnv...),
			want: []string{"config: telegram.webhook_secret (FIELDOPS_TELEGRAM_WEBHOOK_SECRET) is not valid (value hidden): allowed 1 to 256 characters"},
		},
		{
			name: "ErrWebhookSecretLength",
			env:  append([]string{"FIELDOPS_TELEGRAM_WEBHOOK_SECRET=" + strings.Repeat(secretMark, 50)}, requiredEnv...),
			want: []string{"config: telegram.webhook_secret (FIELDOPS_TELEGRAM_WEBHOOK_SECRET) is not valid (value hidden)"},
		},
		{
			name: "ErrBotUsernameMissing",
			env:  append([]string{"FIELDOPS_TELEGRAM_TOKEN=123:" + secretMark}, requiredEnv...),
			want: []string{"config: telegram.bot_username (FIELDOPS_TELEGRAM_BOT_USERNAME) is required with telegram.token"},
		},
		{
			name: "ErrBotUsername",
			env:  append([]string{"FIELDOPS_TELEGRAM_BOT_USERNAME=@fieldops_bot"}, requiredEnv...),
			want: []string{`config: telegram.bot_username (FIELDOPS_TELEGRAM_BOT_USERNAME) is "@fieldops_bot": allowed the bot's username without @`},
		},
		{
			name: "ErrSMTPHostWithPort",
			env:  append([]string{"FIELDOPS_SMTP_HOST=smtp.example.com:587"}, requiredEnv...),
			want: []string{`config: smtp.host (FIELDOPS_SMTP_HOST) is "smtp.example.com:587": allowed a host name or IP address without a port`},
		},
		{
			name: "ErrSMTPPort",
			doc:  "smtp:\n  port: 0\n",
			env:  requiredEnv,
			want: []string{"config: smtp.port (FIELDOPS_SMTP_PORT) is 0: allowed 1 to 65535"},
		},
		{
			name: "ErrSMTPFrom",
			env:  append([]string{"FIELDOPS_SMTP_FROM=fieldops"}, requiredEnv...),
			want: []string{`config: smtp.from (FIELDOPS_SMTP_FROM) is "fieldops": allowed an address`},
		},
		{
			name: "ErrSMTPTLS",
			env:  append([]string{"FIELDOPS_SMTP_TLS=ssl"}, requiredEnv...),
			want: []string{`config: smtp.tls (FIELDOPS_SMTP_TLS) is "ssl": allowed starttls, tls, none`},
		},
		{
			name: "ErrTOTPKeyLength",
			env:  append([]string{"FIELDOPS_SECURITY_TOTP_KEY=" + secretMark + "AA"}, requiredEnv...),
			want: []string{"config: security.totp_key (FIELDOPS_SECURITY_TOTP_KEY) is not valid (value hidden): allowed the standard base64 of 32 random bytes"},
		},
		{
			name: "ErrTOTPKeyNotBase64",
			env:  append([]string{"FIELDOPS_SECURITY_TOTP_KEY=" + secretMark + "-" + testTOTPKey[7:]}, requiredEnv...),
			want: []string{"config: security.totp_key (FIELDOPS_SECURITY_TOTP_KEY) is not valid (value hidden)"},
		},
		{
			name: "ErrPhotosDirEmpty",
			doc:  "storage:\n  photos_dir: \"\"\n",
			env:  requiredEnv,
			want: []string{`config: storage.photos_dir (FIELDOPS_STORAGE_PHOTOS_DIR) is "": allowed a directory`},
		},
		{
			name: "ErrLogLevel",
			env:  append([]string{"FIELDOPS_LOG_LEVEL=loud"}, requiredEnv...),
			want: []string{`config: log.level (FIELDOPS_LOG_LEVEL) is "loud": allowed debug, info, warn, error`},
		},
		{
			name: "ErrLogFormat",
			doc:  "log:\n  format: xml\n",
			env:  requiredEnv,
			want: []string{`config: log.format (FIELDOPS_LOG_FORMAT) is "xml": allowed text, json`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.name == "ErrMissingYAMLFile" {
				_, err = LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"), requiredEnv)
			} else {
				_, err = loadTestConfig(t, tt.doc, tt.env, tt.files)
			}
			if err == nil {
				t.Fatal("LoadConfig succeeded")
			}
			msg := err.Error()
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q\ndoes not hold %q", msg, want)
				}
			}
			if !strings.HasPrefix(msg, "config: ") {
				t.Errorf("error %q does not start with \"config: \"", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			if strings.Contains(msg, secretMark) {
				t.Errorf("error %q shows a secret", msg)
			}
		})
	}
}

func TestConfig_Redacted(t *testing.T) {
	c := withRequired()
	c.Redis.URLFile = "/run/secrets/redis"
	c.Telegram.Token = "123:" + secretMark
	c.SMTP.Password = secretMark
	c.Security.TOTPKey = testTOTPKey

	got := c.Redacted()

	want := DefaultConfig()
	want.Database.URL = "[set]"
	want.Redis.URL = "[set]"
	want.Redis.URLFile = "/run/secrets/redis" // a path is no secret
	want.Telegram.Token = "[set]"
	want.SMTP.Password = "[set]"
	want.Security.TOTPKey = "[set]"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Redacted:\n got %+v\nwant %+v", got, want)
	}
	if s := fmt.Sprintf("%+v", got); strings.Contains(s, secretMark) {
		t.Errorf("Redacted shows a secret: %s", s)
	}
	if c.Database.URL != testDatabaseURL {
		t.Errorf("Redacted changed its receiver")
	}
}

func TestSecurityConfig_TOTPKeyBytes(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		key, err := SecurityConfig{TOTPKey: testTOTPKey}.TOTPKeyBytes()
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != 32 || string(key[:6]) != secretMark {
			t.Errorf("key = %q", key)
		}
	})
	t.Run("ErrRequired", func(t *testing.T) {
		_, err := SecurityConfig{}.TOTPKeyBytes()
		if err == nil || !strings.Contains(err.Error(), "security.totp_key (FIELDOPS_SECURITY_TOTP_KEY) is required") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestLogConfig_Logger(t *testing.T) {
	t.Run("OKText", func(t *testing.T) {
		var buf bytes.Buffer
		log := LogConfig{Level: "warn", Format: "text"}.Logger(&buf)
		log.Info("hidden")
		log.Warn("shown", "k", "v")
		if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "level=WARN msg=shown k=v") {
			t.Errorf("log = %q", got)
		}
	})
	t.Run("OKJSON", func(t *testing.T) {
		var buf bytes.Buffer
		log := LogConfig{Level: "debug", Format: "json"}.Logger(&buf)
		log.Debug("shown", "k", "v")
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("log %q: %v", buf.String(), err)
		}
		if line["level"] != "DEBUG" || line["msg"] != "shown" || line["k"] != "v" {
			t.Errorf("log = %v", line)
		}
	})
}

// settings returns the YAML path and the environment variable, as the tags
// give them, of every leaf of struct type t.
func settings(t reflect.Type, pathPrefix, envPrefix string) (paths, envs []string) {
	for f := range t.Fields() {
		path := yamlKey(f)
		if pathPrefix != "" {
			path = pathPrefix + "." + path
		}
		if f.Type.Kind() == reflect.Struct {
			p, e := settings(f.Type, path, envPrefix+f.Tag.Get("envPrefix"))
			paths, envs = append(paths, p...), append(envs, e...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		paths, envs = append(paths, path), append(envs, envPrefix+name)
	}
	return paths, envs
}

func TestConfig_EnvNames(t *testing.T) {
	paths, envs := settings(reflect.TypeFor[Config](), "", "FIELDOPS_")
	for i, path := range paths {
		if envs[i] != envName(path) {
			t.Errorf("%s: tags give %s, errors name %s", path, envs[i], envName(path))
		}
	}
	var c Config
	for _, s := range c.secrets() {
		for _, path := range []string{s.path, s.path + "_file"} {
			if !slices.Contains(paths, path) {
				t.Errorf("secret %s: no such key", path)
			}
		}
	}
}

const examplePath = "../../config.example.yaml"

func TestConfigExample(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	paths, envs := settings(reflect.TypeFor[Config](), "", "FIELDOPS_")
	var secretPaths []string
	var c Config
	for _, s := range c.secrets() {
		secretPaths = append(secretPaths, s.path, s.path+"_file")
	}

	t.Run("OKDocumentsTheDefaults", func(t *testing.T) {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		var decoded Config
		if err := dec.Decode(&decoded); err != nil {
			t.Fatalf("%s: %v", examplePath, err)
		}
		got, err := LoadConfig(examplePath, requiredEnv)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, withRequired()) {
			t.Errorf("%s with the required secrets:\n got %+v\nwant %+v", examplePath, got, withRequired())
		}
	})

	// Every key but the secrets is set; the secrets are commented out.
	t.Run("OKSetsEveryKeyButSecrets", func(t *testing.T) {
		var want []string
		for _, p := range paths {
			if !slices.Contains(secretPaths, p) {
				want = append(want, p)
			}
		}
		checkKeys(t, b, want)
	})

	// The commented-out keys, "  # key: value" in a section, are the
	// secrets.
	t.Run("OKShowsEverySecret", func(t *testing.T) {
		commented := regexp.MustCompile(`(?m)^( +)# ?([a-z][a-z_]*:(\s.*)?)$`)
		checkKeys(t, commented.ReplaceAll(b, []byte("$1$2")), paths)
	})

	t.Run("OKNamesEveryEnvVar", func(t *testing.T) {
		for _, env := range envs {
			if !bytes.Contains(b, []byte(env)) {
				t.Errorf("%s does not name %s", examplePath, env)
			}
		}
	})
}

// checkKeys fails t unless the YAML doc sets exactly the keys want, in that order.
func checkKeys(t *testing.T, doc []byte, want []string) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			switch {
			case v.Kind == yaml.MappingNode:
				walk(v, path)
			case prefix == "" && v.Tag == "!!null":
				// a section whose keys are all commented out
			default:
				got = append(got, path)
			}
		}
	}
	walk(root.Content[0], "")
	if !slices.Equal(got, want) {
		t.Errorf("keys:\n got %v\nwant %v", got, want)
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg, err := LoadConfig("", append([]string{"FIELDOPS_HTTP_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7/32"}, requiredEnv...))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.HTTP.TrustedPrefixes()
	if len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.7/32" {
		t.Fatalf("trusted proxies = %v", got)
	}
}
