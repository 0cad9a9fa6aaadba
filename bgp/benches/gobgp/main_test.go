// GoBGP's own BGP message codec (pkg/packet/bgp) timed on the very bytes that
// podbgp's criterion benchmark (../wire.rs) uses, so both can be compared.
//
// Built in GOPATH mode against Debian's golang-github-osrg-gobgp-dev; see
// run.sh beside this file.
//
// GoBGP has no "4-octet AS negotiated" switch for its parser: its AS_PATH
// decoder tries the 4-octet reading first and falls back to 2-octet only if
// that fails, so ParseBGPMessage needs no MarshallingOption here (the only
// per-session option it knows is ADD-PATH, which is off for these messages).
package gobgpbench

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osrg/gobgp/pkg/packet/bgp"
)

// readHex reads one of ../data/*.hex: '#' lines are comments, the rest is
// the hex of one whole BGP message.
func readHex(tb testing.TB, name string) []byte {
	tb.Helper()
	text, err := os.ReadFile(filepath.Join("..", "data", name))
	if err != nil {
		tb.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	raw, err := hex.DecodeString(digits.String())
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return raw
}

func decode(tb testing.TB, raw []byte) *bgp.BGPMessage {
	tb.Helper()
	msg, err := bgp.ParseBGPMessage(raw)
	if err != nil {
		tb.Fatalf("ParseBGPMessage: %v", err)
	}
	if msg.Header.Type != bgp.BGP_MSG_UPDATE {
		tb.Fatalf("message type %d, want UPDATE", msg.Header.Type)
	}
	return msg
}

// checkAttributes asserts the attribute set both messages carry:
// ORIGIN IGP, AS_PATH 64513 65001, NEXT_HOP 172.18.0.3, MED 0,
// LOCAL_PREF 100, COMMUNITIES 64512:100 64512:200, LARGE_COMMUNITY 64512:1:2.
func checkAttributes(t *testing.T, u *bgp.BGPUpdate) {
	t.Helper()
	if len(u.WithdrawnRoutes) != 0 {
		t.Errorf("%d withdrawn routes, want none", len(u.WithdrawnRoutes))
	}
	seen := map[bgp.BGPAttrType]bool{}
	for _, a := range u.PathAttributes {
		seen[a.GetType()] = true
		switch a := a.(type) {
		case *bgp.PathAttributeOrigin:
			if a.Value != bgp.BGP_ORIGIN_ATTR_TYPE_IGP {
				t.Errorf("ORIGIN %d, want IGP", a.Value)
			}
		case *bgp.PathAttributeAsPath:
			if len(a.Value) != 1 {
				t.Fatalf("AS_PATH has %d segments, want 1", len(a.Value))
			}
			seg, ok := a.Value[0].(*bgp.As4PathParam)
			if !ok {
				t.Fatalf("AS_PATH segment read as %T, want 4-octet *bgp.As4PathParam", a.Value[0])
			}
			if seg.Type != bgp.BGP_ASPATH_ATTR_TYPE_SEQ || fmt.Sprint(seg.AS) != "[64513 65001]" {
				t.Errorf("AS_PATH type %d %v, want AS_SEQUENCE [64513 65001]", seg.Type, seg.AS)
			}
		case *bgp.PathAttributeNextHop:
			if !a.Value.Equal(net.IPv4(172, 18, 0, 3)) {
				t.Errorf("NEXT_HOP %v, want 172.18.0.3", a.Value)
			}
		case *bgp.PathAttributeMultiExitDisc:
			if a.Value != 0 {
				t.Errorf("MED %d, want 0", a.Value)
			}
		case *bgp.PathAttributeLocalPref:
			if a.Value != 100 {
				t.Errorf("LOCAL_PREF %d, want 100", a.Value)
			}
		case *bgp.PathAttributeCommunities:
			want := []uint32{64512<<16 | 100, 64512<<16 | 200}
			if fmt.Sprint(a.Value) != fmt.Sprint(want) {
				t.Errorf("COMMUNITIES %v, want 64512:100 64512:200", a.Value)
			}
		case *bgp.PathAttributeLargeCommunities:
			if len(a.Values) != 1 || *a.Values[0] != (bgp.LargeCommunity{ASN: 64512, LocalData1: 1, LocalData2: 2}) {
				t.Errorf("LARGE_COMMUNITY %v, want 64512:1:2", a.Values)
			}
		default:
			t.Errorf("unexpected attribute %T", a)
		}
	}
	for _, typ := range []bgp.BGPAttrType{
		bgp.BGP_ATTR_TYPE_ORIGIN, bgp.BGP_ATTR_TYPE_AS_PATH, bgp.BGP_ATTR_TYPE_NEXT_HOP,
		bgp.BGP_ATTR_TYPE_MULTI_EXIT_DISC, bgp.BGP_ATTR_TYPE_LOCAL_PREF,
		bgp.BGP_ATTR_TYPE_COMMUNITIES, bgp.BGP_ATTR_TYPE_LARGE_COMMUNITY,
	} {
		if !seen[typ] {
			t.Errorf("attribute %v missing", typ)
		}
	}
	if len(u.PathAttributes) != 7 {
		t.Errorf("%d path attributes, want 7", len(u.PathAttributes))
	}
}

// checkRoundTrip asserts Serialize() of the decoded message gives the input
// back, twice (the benchmark serializes the same message over and over).
func checkRoundTrip(t *testing.T, msg *bgp.BGPMessage, raw []byte) {
	t.Helper()
	for i := 0; i < 2; i++ {
		out, err := msg.Serialize()
		if err != nil {
			t.Fatalf("Serialize: %v", err)
		}
		if !bytes.Equal(out, raw) {
			t.Fatalf("Serialize #%d differs from the input:\n got %x\nwant %x", i+1, out, raw)
		}
	}
}

func TestFullUpdate(t *testing.T) {
	raw := readHex(t, "full-update.hex")
	// 19 (header) + 2 + 2 + 64 (attributes) + 1002*4 (NLRI) = 4095 bytes,
	// which is what the header's length field (0x0fff) says too.
	if len(raw) != 4095 {
		t.Fatalf("full-update.hex holds %d bytes, want 4095", len(raw))
	}
	msg := decode(t, raw)
	u := msg.Body.(*bgp.BGPUpdate)
	checkAttributes(t, u)
	if len(u.NLRI) != 1002 {
		t.Fatalf("%d prefixes, want 1002", len(u.NLRI))
	}
	for i, p := range u.NLRI {
		want := net.IPv4(10, byte(i>>8), byte(i), 0)
		if p.Length != 24 || !p.Prefix.Equal(want) {
			t.Fatalf("prefix %d is %s, want %s/24", i, p.String(), want)
		}
	}
	checkRoundTrip(t, msg, raw)
}

func TestIbgpUpdate(t *testing.T) {
	raw := readHex(t, "ibgp-update.hex")
	msg := decode(t, raw)
	u := msg.Body.(*bgp.BGPUpdate)
	checkAttributes(t, u)
	if len(u.NLRI) != 1 || u.NLRI[0].String() != "10.0.1.0/24" {
		t.Fatalf("NLRI %v, want [10.0.1.0/24]", u.NLRI)
	}
	checkRoundTrip(t, msg, raw)
}

var (
	sinkMsg   *bgp.BGPMessage
	sinkBytes []byte
)

func benchDecode(b *testing.B, name string) {
	raw := readHex(b, name)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg, err := bgp.ParseBGPMessage(raw)
		if err != nil {
			b.Fatal(err)
		}
		sinkMsg = msg
	}
}

func benchEncode(b *testing.B, name string) {
	msg := decode(b, readHex(b, name))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := msg.Serialize()
		if err != nil {
			b.Fatal(err)
		}
		sinkBytes = out
	}
}

func BenchmarkDecodeFullUpdate(b *testing.B) { benchDecode(b, "full-update.hex") }
func BenchmarkEncodeFullUpdate(b *testing.B) { benchEncode(b, "full-update.hex") }
func BenchmarkDecodeIbgpUpdate(b *testing.B) { benchDecode(b, "ibgp-update.hex") }
func BenchmarkEncodeIbgpUpdate(b *testing.B) { benchEncode(b, "ibgp-update.hex") }
