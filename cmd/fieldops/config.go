package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// envPrefix starts the name of every environment variable fieldops reads.
const envPrefix = "FIELDOPS_"

// Config is everything fieldops reads at start. LoadConfig builds it in
// layers, each overriding the one before: DefaultConfig, a YAML file, then
// FIELDOPS_* environment variables. config.example.yaml documents every key.
//
// A secret (database.url, redis.url, telegram.token, telegram.webhook_secret,
// smtp.password, security.totp_key) can instead be given as the name of a
// file that holds it: the key with _file added (database.url_file,
// FIELDOPS_DATABASE_URL_FILE). LoadConfig reads the file into the secret's
// field and leaves its path in the _file field. Log Redacted, never Config.
type Config struct {
	HTTP     HTTPConfig     `yaml:"http" envPrefix:"HTTP_"`
	Database DatabaseConfig `yaml:"database" envPrefix:"DATABASE_"`
	Redis    RedisConfig    `yaml:"redis" envPrefix:"REDIS_"`
	Telegram TelegramConfig `yaml:"telegram" envPrefix:"TELEGRAM_"`
	SMTP     SMTPConfig     `yaml:"smtp" envPrefix:"SMTP_"`
	Security SecurityConfig `yaml:"security" envPrefix:"SECURITY_"`
	Storage  StorageConfig  `yaml:"storage" envPrefix:"STORAGE_"`
	Log      LogConfig      `yaml:"log" envPrefix:"LOG_"`
}

// HTTPConfig is the web server of the admin panel and the Telegram webhook.
type HTTPConfig struct {
	Addr            string        `yaml:"addr" env:"ADDR"`
	BaseURL         string        `yaml:"base_url" env:"BASE_URL"` // public URL, for links in emails
	SecureCookies   bool          `yaml:"secure_cookies" env:"SECURE_COOKIES"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" env:"SHUTDOWN_TIMEOUT"`
	// TrustedProxies are the reverse proxies (CIDRs) whose
	// X-Forwarded-For is believed, to record and throttle the client's own
	// address rather than the proxy's.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TRUSTED_PROXIES" envSeparator:","`
}

// DatabaseConfig is the Postgres database.
type DatabaseConfig struct {
	URL      string `yaml:"url" env:"URL"` // secret
	URLFile  string `yaml:"url_file" env:"URL_FILE"`
	MaxConns int    `yaml:"max_conns" env:"MAX_CONNS"`
}

// RedisConfig is the Redis server.
type RedisConfig struct {
	URL     string `yaml:"url" env:"URL"` // secret
	URLFile string `yaml:"url_file" env:"URL_FILE"`
}

// TelegramConfig is the bot. The bot is off when Token is empty.
type TelegramConfig struct {
	Token             string `yaml:"token" env:"TOKEN"` // secret
	TokenFile         string `yaml:"token_file" env:"TOKEN_FILE"`
	APIURL            string `yaml:"api_url" env:"API_URL"`
	Mode              string `yaml:"mode" env:"MODE"`                     // "polling" or "webhook"
	WebhookSecret     string `yaml:"webhook_secret" env:"WEBHOOK_SECRET"` // secret
	WebhookSecretFile string `yaml:"webhook_secret_file" env:"WEBHOOK_SECRET_FILE"`
	BotUsername       string `yaml:"bot_username" env:"BOT_USERNAME"`
}

// Enabled reports whether the bot runs: whether a token is set.
func (c TelegramConfig) Enabled() bool { return c.Token != "" }

// SMTPConfig is the mail server. Mail is off when Host is empty.
type SMTPConfig struct {
	Host         string `yaml:"host" env:"HOST"`
	Port         int    `yaml:"port" env:"PORT"`
	Username     string `yaml:"username" env:"USERNAME"`
	Password     string `yaml:"password" env:"PASSWORD"` // secret
	PasswordFile string `yaml:"password_file" env:"PASSWORD_FILE"`
	From         string `yaml:"from" env:"FROM"`
	TLS          string `yaml:"tls" env:"TLS"` // "starttls", "tls" or "none"
}

// Enabled reports whether fieldops sends mail: whether a host is set.
func (c SMTPConfig) Enabled() bool { return c.Host != "" }

// SecurityConfig holds the keys of fieldops itself.
type SecurityConfig struct {
	// TOTPKey encrypts the users' TOTP secrets: the standard base64 of 32
	// bytes. Only serve needs it; see TOTPKeyBytes.
	TOTPKey     string `yaml:"totp_key" env:"TOTP_KEY"` // secret
	TOTPKeyFile string `yaml:"totp_key_file" env:"TOTP_KEY_FILE"`
}

// StorageConfig is where fieldops keeps files.
type StorageConfig struct {
	PhotosDir string `yaml:"photos_dir" env:"PHOTOS_DIR"`
}

// LogConfig is the log written to stderr.
type LogConfig struct {
	Level  string `yaml:"level" env:"LEVEL"`   // debug, info, warn or error
	Format string `yaml:"format" env:"FORMAT"` // text or json
}

// DefaultConfig returns the defaults, which config.example.yaml repeats.
// The required secrets are empty: they have no default.
func DefaultConfig() Config {
	return Config{
		HTTP: HTTPConfig{
			Addr:            "127.0.0.1:8080",
			BaseURL:         "http://localhost:8080",
			SecureCookies:   true,
			ShutdownTimeout: 15 * time.Second,
			TrustedProxies:  []string{},
		},
		Database: DatabaseConfig{MaxConns: 10},
		Telegram: TelegramConfig{
			APIURL: "https://api.telegram.org",
			Mode:   "polling",
		},
		SMTP: SMTPConfig{
			Port: 587,
			From: "fieldops <no-reply@localhost>",
			TLS:  "starttls",
		},
		Storage: StorageConfig{PhotosDir: "./.data/photos"},
		Log:     LogConfig{Level: "info", Format: "text"},
	}
}

// LoadConfig returns DefaultConfig overridden by the YAML file at path (none
// if path is empty), then by the FIELDOPS_* variables in environ ("KEY=value"
// entries as os.Environ returns them; the last entry for a key wins, and an
// empty value counts as unset). It reads secrets given as files and
// validates the result. Its errors are one line and never hold a secret.
func LoadConfig(path string, environ []string) (Config, error) {
	c := DefaultConfig()
	if path != "" {
		if err := c.loadYAML(path); err != nil {
			return Config{}, err
		}
	}
	if err := c.loadEnv(environ); err != nil {
		return Config{}, err
	}
	if err := c.readSecretFiles(); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadYAML overrides c with the keys set in the file at path.
func (c *Config) loadYAML(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	switch err := dec.Decode(c); {
	case errors.Is(err, io.EOF): // an empty file, or only comments
	case err != nil:
		// A syntax error names its line already. A TypeError lists every
		// bad key by line only, on several lines: name the first instead.
		var doc yaml.Node
		if _, ok := errors.AsType[*yaml.TypeError](err); ok && yaml.Unmarshal(b, &doc) == nil && len(doc.Content) > 0 {
			if err := explainYAML(path, doc.Content[0], reflect.TypeFor[Config](), ""); err != nil {
				return err
			}
		}
		return fmt.Errorf("config: %s: %s", path, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	for _, s := range c.secrets() {
		if *s.value != "" && *s.file != "" {
			return fmt.Errorf("config: %s: %s and %s_file are both set: set one", path, s.path, s.path)
		}
	}
	return nil
}

// explainYAML walks the YAML node n beside the type t it decodes into, and
// returns an error for the first key, in file order, that t does not have
// or whose value does not fit. prefix is the YAML path of n.
func explainYAML(file string, n *yaml.Node, t reflect.Type, prefix string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil
		}
		where := "the top level"
		if prefix != "" {
			where = prefix
		}
		return fmt.Errorf("config: %s line %d: %s is not a mapping: allowed keys %s", file, n.Line, where, yamlKeys(t))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		f, ok := fieldByYAMLKey(t, k.Value)
		switch {
		case !ok:
			return fmt.Errorf("config: %s line %d: unknown key %s: allowed %s", file, k.Line, path, yamlKeys(t))
		case f.Type.Kind() == reflect.Struct:
			if err := explainYAML(file, v, f.Type, path); err != nil {
				return err
			}
		case v.Decode(reflect.New(f.Type).Interface()) != nil:
			got := "not valid (value hidden)"
			switch {
			case v.Kind == yaml.SequenceNode:
				got = "a list"
			case v.Kind == yaml.MappingNode:
				got = "a mapping"
			case !isSecret(path):
				got = strconv.Quote(v.Value)
			}
			return fmt.Errorf("config: %s line %d: %s (%s) is %s: allowed %s", file, v.Line, path, envName(path), got, allowedFor(f.Type))
		}
	}
	return nil
}

// yamlKey returns the key that field f has in YAML.
func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return key
}

func fieldByYAMLKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if yamlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlKeys lists the YAML keys of struct type t, for an error.
func yamlKeys(t reflect.Type) string {
	var keys []string
	for f := range t.Fields() {
		keys = append(keys, yamlKey(f))
	}
	return strings.Join(keys, ", ")
}

// allowedFor says, for an error, what a value of type t looks like.
func allowedFor(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 15s, 2m or 1m30s"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	default:
		return "a string"
	}
}

// loadEnv overrides c with the FIELDOPS_* variables set in environ.
func (c *Config) loadEnv(environ []string) error {
	// Never nil: given a nil Environment, env reads the process's.
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	// A secret set in the environment, in either form, replaces the one
	// from the file in either form.
	for _, s := range c.secrets() {
		value, file := vars[envName(s.path)], vars[envName(s.path+"_file")]
		if value != "" && file != "" {
			return fmt.Errorf("config: %s and %s are both set: set one", envName(s.path), envName(s.path+"_file"))
		}
		if value != "" || file != "" {
			*s.value, *s.file = "", ""
		}
	}
	// One section at a time, so that a parse error's field name, unique
	// within its section, tells which key it is.
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		section := v.Type().Field(i)
		err := env.ParseWithOptions(v.Field(i).Addr().Interface(), env.Options{
			Environment: vars,
			Prefix:      envPrefix + section.Tag.Get("envPrefix"),
		})
		if pe, ok := errors.AsType[env.ParseError](err); ok {
			f, _ := section.Type.FieldByName(pe.Name)
			path := yamlKey(section) + "." + yamlKey(f)
			// Secrets are strings, which always parse; still, never show one.
			got := "not valid (value hidden)"
			if !isSecret(path) {
				got = strconv.Quote(vars[envName(path)])
			}
			return fmt.Errorf("config: %s (%s) is %s: allowed %s", path, envName(path), got, allowedFor(f.Type))
		}
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// A secret is a setting that is never logged nor shown in an error, and
// that can be given as the name of a file that holds it.
type secret struct {
	path  string  // its YAML path; the file's key adds "_file"
	value *string // the secret itself
	file  *string // the file that holds it, if given so
}

// secrets lists the secrets of c, in the order of config.example.yaml.
func (c *Config) secrets() []secret {
	return []secret{
		{"database.url", &c.Database.URL, &c.Database.URLFile},
		{"redis.url", &c.Redis.URL, &c.Redis.URLFile},
		{"telegram.token", &c.Telegram.Token, &c.Telegram.TokenFile},
		{"telegram.webhook_secret", &c.Telegram.WebhookSecret, &c.Telegram.WebhookSecretFile},
		{"smtp.password", &c.SMTP.Password, &c.SMTP.PasswordFile},
		{"security.totp_key", &c.Security.TOTPKey, &c.Security.TOTPKeyFile},
	}
}

func isSecret(path string) bool {
	var c Config
	return slices.ContainsFunc(c.secrets(), func(s secret) bool { return s.path == path })
}

// readSecretFiles sets each secret given as a file to the file's content,
// trimmed of surrounding white space.
func (c *Config) readSecretFiles() error {
	for _, s := range c.secrets() {
		if *s.file == "" {
			continue
		}
		key := s.path + "_file"
		b, err := os.ReadFile(*s.file)
		if err != nil {
			if pe, ok := errors.AsType[*fs.PathError](err); ok {
				err = pe.Err
			}
			return fmt.Errorf("config: %s (%s): cannot read %q: %v", key, envName(key), *s.file, err)
		}
		*s.value = strings.TrimSpace(string(b))
		if *s.value == "" {
			return fmt.Errorf("config: %s (%s): %q is empty", key, envName(key), *s.file)
		}
	}
	return nil
}

// Redacted returns c with each secret replaced by "[set]", or "" if unset,
// for logging.
func (c Config) Redacted() Config {
	for _, s := range c.secrets() {
		if *s.value != "" {
			*s.value = "[set]"
		}
	}
	return c
}

// Validate returns the first setting, in the order of config.example.yaml,
// whose value is not allowed. It does not read the _file keys: LoadConfig
// has read them already.
func (c Config) Validate() error {
	for _, validate := range []func() error{
		c.HTTP.validate,
		c.Database.validate,
		c.Redis.validate,
		c.Telegram.validate,
		c.SMTP.validate,
		c.Security.validate,
		c.Storage.validate,
		c.Log.validate,
	} {
		if err := validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c HTTPConfig) validate() error {
	switch {
	case !isHostPort(c.Addr):
		return invalid("http.addr", c.Addr, "host:port such as 127.0.0.1:8080, or :8080 for every interface")
	case !isWebURL(c.BaseURL):
		return invalid("http.base_url", c.BaseURL, "an http:// or https:// URL such as https://fieldops.example.com")
	case c.ShutdownTimeout <= 0:
		return invalid("http.shutdown_timeout", c.ShutdownTimeout, "a duration above zero such as 15s")
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			return invalid("http.trusted_proxies", p, "addresses in CIDR form such as 10.0.0.0/8 or 127.0.0.1/32, separated by commas in the environment")
		}
	}
	return nil
}

// TrustedPrefixes returns the parsed trusted proxies; Validate has
// checked them.
func (c HTTPConfig) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, p := range c.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked())
		}
	}
	return out
}

func (c DatabaseConfig) validate() error {
	const allowed = "a postgres:// or postgresql:// URL"
	switch {
	case c.URL == "":
		return required("database.url", "a postgres:// URL")
	case !hasScheme(c.URL, "postgres", "postgresql"):
		return invalidSecret("database.url", allowed)
	case c.MaxConns < 1 || c.MaxConns > 200:
		return invalid("database.max_conns", c.MaxConns, "1 to 200")
	}
	return nil
}

func (c RedisConfig) validate() error {
	const allowed = "a redis://, rediss:// or unix:// URL"
	switch {
	case c.URL == "":
		return required("redis.url", allowed)
	case !hasScheme(c.URL, "redis", "rediss", "unix"):
		return invalidSecret("redis.url", allowed)
	}
	return nil
}

var (
	webhookSecretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	botUsernameRE   = regexp.MustCompile(`^[A-Za-z0-9_]{5,32}$`)
)

func (c TelegramConfig) validate() error {
	const secretAllowed = "1 to 256 characters of A-Z, a-z, 0-9, _ and -"
	switch {
	case !isWebURL(c.APIURL):
		return invalid("telegram.api_url", c.APIURL, "an http:// or https:// URL such as https://api.telegram.org")
	case c.Mode != "polling" && c.Mode != "webhook":
		return invalid("telegram.mode", c.Mode, "polling, webhook")
	case c.Mode == "webhook" && c.WebhookSecret == "":
		return fmt.Errorf("config: telegram.webhook_secret (%s) is required when telegram.mode is webhook: %s, or telegram.webhook_secret_file naming a file that holds one",
			envName("telegram.webhook_secret"), secretAllowed)
	case c.WebhookSecret != "" && !webhookSecretRE.MatchString(c.WebhookSecret):
		return invalidSecret("telegram.webhook_secret", secretAllowed)
	case c.Token != "" && c.BotUsername == "":
		return fmt.Errorf("config: telegram.bot_username (%s) is required with telegram.token: the bot's username without @, as in t.me/USERNAME (the links that tie a chat to a member use it)",
			envName("telegram.bot_username"))
	case c.BotUsername != "" && !botUsernameRE.MatchString(c.BotUsername):
		return invalid("telegram.bot_username", c.BotUsername, "the bot's username without @: 5 to 32 characters of A-Z, a-z, 0-9 and _")
	}
	return nil
}

func (c SMTPConfig) validate() error {
	switch {
	case strings.Contains(c.Host, ":") && net.ParseIP(c.Host) == nil:
		return invalid("smtp.host", c.Host, "a host name or IP address without a port (set smtp.port)")
	case c.Port < 1 || c.Port > 65535:
		return invalid("smtp.port", c.Port, "1 to 65535")
	case !isMailAddress(c.From):
		return invalid("smtp.from", c.From, `an address such as "fieldops <no-reply@example.com>"`)
	case c.TLS != "starttls" && c.TLS != "tls" && c.TLS != "none":
		return invalid("smtp.tls", c.TLS, "starttls, tls, none")
	}
	return nil
}

const totpKeyAllowed = "the standard base64 of 32 random bytes, such as the output of: openssl rand -base64 32"

func (c SecurityConfig) validate() error {
	if c.TOTPKey == "" {
		return nil // required by serve only: see TOTPKeyBytes
	}
	_, err := c.TOTPKeyBytes()
	return err
}

// TOTPKeyBytes returns the 32-byte key that encrypts TOTP secrets, or an
// error naming security.totp_key if it is unset or not valid.
func (c SecurityConfig) TOTPKeyBytes() ([]byte, error) {
	if c.TOTPKey == "" {
		return nil, required("security.totp_key", totpKeyAllowed)
	}
	key, err := base64.StdEncoding.DecodeString(c.TOTPKey)
	if err != nil || len(key) != 32 {
		return nil, invalidSecret("security.totp_key", totpKeyAllowed)
	}
	return key, nil
}

func (c StorageConfig) validate() error {
	if c.PhotosDir == "" {
		return invalid("storage.photos_dir", c.PhotosDir, "a directory, such as ./.data/photos")
	}
	return nil
}

func (c LogConfig) validate() error {
	switch {
	case !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Level):
		return invalid("log.level", c.Level, "debug, info, warn, error")
	case c.Format != "text" && c.Format != "json":
		return invalid("log.format", c.Format, "text, json")
	}
	return nil
}

// Logger returns a logger writing to w in c.Format at c.Level or above.
func (c LogConfig) Logger(w io.Writer) *slog.Logger {
	var level slog.Level // info, if c.Level is not valid
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// envName returns the environment variable of the setting at a YAML path:
// "database.url" is FIELDOPS_DATABASE_URL.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// invalid is the error for a setting whose value is not allowed.
func invalid(path string, value any, allowed string) error {
	if s, ok := value.(string); ok {
		value = strconv.Quote(s)
	}
	return fmt.Errorf("config: %s (%s) is %v: allowed %s", path, envName(path), value, allowed)
}

// invalidSecret is invalid for a secret: it does not show the value.
func invalidSecret(path, allowed string) error {
	return fmt.Errorf("config: %s (%s) is not valid (value hidden): allowed %s", path, envName(path), allowed)
}

// required is the error for a secret that is unset.
func required(path, allowed string) error {
	return fmt.Errorf("config: %s (%s) is required: %s, or %s_file naming a file that holds one", path, envName(path), allowed, path)
}

func isHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// isWebURL reports whether s is an absolute http or https URL fit to build
// links on: a host, and no user, query or fragment.
func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == ""
}

func isMailAddress(s string) bool {
	_, err := mail.ParseAddress(s)
	return err == nil
}

func hasScheme(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	return err == nil && slices.Contains(schemes, u.Scheme)
}
