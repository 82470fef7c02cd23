package edge

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/schemas"
)

func TestReadyz(t *testing.T) {
	t.Run("no health service", func(t *testing.T) {
		g := startEdge(t, nil)
		code, rd := getReadyz(t, g)
		if code != http.StatusServiceUnavailable || rd.Ready || len(rd.NotReady) != 1 || rd.NotReady[0] != subject.ServiceHealth {
			t.Errorf("/readyz: %d %+v", code, rd)
		}
	})
	t.Run("all services answer, then one does not", func(t *testing.T) {
		g := startEdge(t, nil)
		startFakeServices(t, g.nc)
		if code, rd := getReadyz(t, g); code != http.StatusOK || !rd.Ready {
			t.Errorf("/readyz: %d %+v", code, rd)
		}
		c, _ := g.connect("ui")
		sum := sampleHealth(false)
		sum.Services = []schemas.ServiceHealth{{Name: "health", OK: true}, {Name: "agent", OK: false}}
		data, _ := json.Marshal(sum)
		if err := g.nc.Publish(subject.HealthChanged, data); err != nil {
			t.Fatal(err)
		}
		c.NextEvent(schemas.EventHealth) // the edge holds the new summary once it broadcasts it
		code, rd := getReadyz(t, g)
		if code != http.StatusServiceUnavailable || rd.Ready || len(rd.NotReady) != 1 || rd.NotReady[0] != "agent" {
			t.Errorf("/readyz: %d %+v", code, rd)
		}
	})
}

func getReadyz(t *testing.T, g *gw) (int, readiness) {
	t.Helper()
	resp, err := http.Get("http://" + g.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd readiness
	if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, rd
}
