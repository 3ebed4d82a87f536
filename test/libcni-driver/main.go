// twill-libcni-driver drives CNI plugins through libcni, the Go library container runtimes
// (containerd, CRI-O, Podman via netavark's predecessor, kubelet's dockershim) link against, so
// the integration tests see exactly the plugin chain, result caching, prevResult plumbing,
// capability injection and GC/STATUS semantics of a real runtime.
//
// Usage:
//
//	twill-libcni-driver <add|check|del|gc|status> (--conflist FILE | --confdir DIR [--network NAME])
//	    [--netns PATH] [--container-id ID] [--ifname NAME] [--bin-dirs DIR:DIR] [--cache-dir DIR]
//	    [--valid JSON] [--runtime-config JSON] [--cni-args K=V;K=V] [--timeout SECONDS]
//
// add prints libcni's result (JSON) on stdout; the other verbs print nothing on success. Any
// failure prints one JSON object on stderr, {"msg", "code"?, "details"?} where code is the CNI
// error code of the first plugin error found, and exits 1 (2 for usage errors).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

type options struct {
	verb          string
	confList      string
	confDir       string
	network       string
	netns         string
	containerID   string
	ifName        string
	binDirs       string
	cacheDir      string
	valid         string
	runtimeConfig string
	cniArgs       string
	timeout       time.Duration
}

func main() {
	opts, err := parseArgs(os.Args[1:], os.Stderr)
	if err != nil {
		fail(2, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	out, err := run(ctx, opts)
	if err != nil {
		fail(1, err)
	}
	if out != nil {
		os.Stdout.Write(append(out, '\n'))
	}
}

func parseArgs(argv []string, stderr io.Writer) (*options, error) {
	if len(argv) == 0 {
		return nil, errors.New("missing verb: add, check, del, gc or status")
	}
	o := &options{verb: argv[0]}
	fs := flag.NewFlagSet("twill-libcni-driver "+o.verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.confList, "conflist", "", "network configuration list file")
	fs.StringVar(&o.confDir, "confdir", "", "directory of *.conflist files (first by name, or --network)")
	fs.StringVar(&o.network, "network", "", "network name to load from --confdir")
	fs.StringVar(&o.netns, "netns", "", "network namespace path")
	fs.StringVar(&o.containerID, "container-id", "", "container ID")
	fs.StringVar(&o.ifName, "ifname", "eth0", "interface name in the container")
	fs.StringVar(&o.binDirs, "bin-dirs", "/opt/cni/bin", "colon-separated plugin directories")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "libcni cache directory (required)")
	fs.StringVar(&o.valid, "valid", "", `gc: JSON list of {"containerID","ifname"} (absent: no valid list is sent)`)
	fs.StringVar(&o.runtimeConfig, "runtime-config", "", "JSON object of capability arguments (portMappings, bandwidth, ...)")
	fs.StringVar(&o.cniArgs, "cni-args", "", "CNI_ARGS as K=V;K=V")
	timeoutSec := fs.Int("timeout", 120, "overall timeout in seconds")
	if err := fs.Parse(argv[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch o.verb {
	case "add", "check", "del", "gc", "status":
	default:
		return nil, fmt.Errorf("unknown verb %q", o.verb)
	}
	if (o.confList == "") == (o.confDir == "") {
		return nil, errors.New("exactly one of --conflist and --confdir is required")
	}
	if o.cacheDir == "" {
		return nil, errors.New("--cache-dir is required (never use the host's /var/lib/cni)")
	}
	if (o.verb == "add" || o.verb == "check" || o.verb == "del") && o.containerID == "" {
		return nil, errors.New("--container-id is required for " + o.verb)
	}
	o.timeout = time.Duration(*timeoutSec) * time.Second
	return o, nil
}

func loadList(o *options) (*libcni.NetworkConfigList, error) {
	if o.confList != "" {
		return libcni.NetworkConfFromFile(o.confList)
	}
	if o.network != "" {
		return libcni.LoadNetworkConf(o.confDir, o.network)
	}
	// Like a runtime reading one network (containerd's max_conf_num = 1): the first file by name.
	files, err := libcni.ConfFiles(o.confDir, []string{".conflist"})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .conflist file in %s", o.confDir)
	}
	sort.Strings(files)
	return libcni.NetworkConfFromFile(files[0])
}

func run(ctx context.Context, o *options) ([]byte, error) {
	list, err := loadList(o)
	if err != nil {
		return nil, fmt.Errorf("loading configuration: %w", err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(splitDirs(o.binDirs), o.cacheDir, nil)
	rt := &libcni.RuntimeConf{
		ContainerID: o.containerID,
		NetNS:       o.netns,
		IfName:      o.ifName,
		CacheDir:    o.cacheDir,
	}
	if o.runtimeConfig != "" {
		if err := json.Unmarshal([]byte(o.runtimeConfig), &rt.CapabilityArgs); err != nil {
			return nil, fmt.Errorf("--runtime-config: %w", err)
		}
	}
	if o.cniArgs != "" {
		for _, kv := range strings.Split(o.cniArgs, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("--cni-args: %q is not K=V", kv)
			}
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}
	switch o.verb {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case "check":
		return nil, cni.CheckNetworkList(ctx, list, rt)
	case "del":
		return nil, cni.DelNetworkList(ctx, list, rt)
	case "gc":
		var args *libcni.GCArgs
		if o.valid != "" {
			args = &libcni.GCArgs{}
			if err := json.Unmarshal([]byte(o.valid), &args.ValidAttachments); err != nil {
				return nil, fmt.Errorf("--valid: %w", err)
			}
		}
		return nil, cni.GCNetworkList(ctx, list, args)
	case "status":
		return nil, cni.GetStatusNetworkList(ctx, list)
	}
	return nil, fmt.Errorf("unknown verb %q", o.verb)
}

func splitDirs(colonList string) []string {
	var dirs []string
	for _, d := range strings.Split(colonList, ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// fail prints {"msg","code"?,"details"?} on stderr; code is the first plugin (types.Error) code
// found in the error chain, which survives errors.Join (GC) and fmt wrapping.
func fail(exit int, err error) {
	out := map[string]interface{}{"msg": err.Error()}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		out["code"] = cniErr.Code
		out["pluginMsg"] = cniErr.Msg
		if cniErr.Details != "" {
			out["details"] = cniErr.Details
		}
	}
	b, _ := json.Marshal(out)
	os.Stderr.Write(append(b, '\n'))
	os.Exit(exit)
}
