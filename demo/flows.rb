# frozen_string_literal: true

module Demo
  # The request flows of the seed's sequence diagrams (the "Stateless Router" proposal with routes
  # learning), replayed in this order against the live topology. The routers' caches persist from
  # one flow to the next, exactly as they would for a stream of users: the expectations say what
  # each request must find (cache hit or miss), which cell must serve it, and what it must answer.
  #
  # Step fields:
  #   method, path      the request (path may carry a query)
  #   follow: true      request the previous step's Location instead of a path (a browser following a redirect)
  #   before: :action   something the world does first (see Topology#action_*); note: what it is, for the drawings
  #   expect:
  #     status          HTTP status the client gets
  #     cell            the cell that served it (X-Served-By; the router's trace must agree)
  #     cache           the router's verdict: hit, miss (learned, then cached), shared (read from the routers'
  #                     shared cache in Redis: another router learned it) or bypass (learned, never cached)
  #     location        Location path the client is sent to (its host must be the router the client used)
  #     learned         the cell the learn endpoint named (miss/bypass only)
  #     misdirected     a cell that answered 421 before the router retried on the owner
  module Flows
    Flow = Struct.new(:id, :title, :seed, :router, :user, :steps, keyword_init: true)

    ALL = [
      Flow.new(
        id: "eu-user-project",
        title: "European user opens /my-company/my-project",
        seed: "Cache miss: the router asks a random cell, which answers cell_eu0; the request goes to cell_eu0. " \
              "cell_eu0's answer carries X-Gitlab-Cell-Cache for the whole /my-company namespace.",
        router: "router_eu", user: "alice",
        steps: [
          { method: "GET", path: "/my-company/my-project",
            expect: { status: 200, cell: "cell_eu0", cache: "miss", learned: "cell_eu0" } }
        ]
      ),
      Flow.new(
        id: "eu-user-not-signed-in",
        title: "Not signed in: a private project of my-company sends the user to sign in",
        seed: "The project's cell redirects to /users/sign_in, which the rules pin to the legacy cell (cell_us0). " \
              "/my-company was cached by the previous flow, so only the sign-in page is learned.",
        router: "router_eu", user: nil,
        steps: [
          { method: "GET", path: "/my-company/secret",
            expect: { status: 302, cell: "cell_eu0", cache: "hit", location: "/users/sign_in" } },
          { method: "GET", follow: true,
            expect: { status: 200, cell: "cell_us0", cache: "miss", learned: "cell_us0" } }
        ]
      ),
      Flow.new(
        id: "same-prefix",
        title: "A second project under the cached /my-company prefix",
        seed: "No learn request: the router already knows /my-company lives on cell_eu0.",
        router: "router_eu", user: "alice",
        steps: [
          { method: "GET", path: "/my-company/other-project", expect: { status: 200, cell: "cell_eu0", cache: "hit" } },
          { method: "GET", path: "/my-company/other-project/-/issues", expect: { status: 200, cell: "cell_eu0", cache: "hit" } }
        ]
      ),
      Flow.new(
        id: "us-project-from-eu",
        title: "/gitlab-org/gitlab from Europe",
        seed: "router_eu learns that gitlab-org lives on cell_us0 and forwards across regions; the next request is a hit.",
        router: "router_eu", user: "alice",
        steps: [
          { method: "GET", path: "/gitlab-org/gitlab", expect: { status: 200, cell: "cell_us0", cache: "miss", learned: "cell_us0" } },
          { method: "GET", path: "/gitlab-org/gitlab/-/merge_requests", expect: { status: 200, cell: "cell_us0", cache: "hit" } }
        ]
      ),
      Flow.new(
        id: "root-redirect",
        title: "/ is never cached and redirects to the organization dashboard",
        seed: "The learn answer for / is uncacheable: every request asks again. A signed-in user's session cookie names " \
              "their cell (cell_eu0), which redirects to /o/my-company/-/dashboard; an anonymous visitor goes to the " \
              "default (newest) cell, cell_eu1, and is sent to sign in.",
        router: "router_eu", user: "alice",
        steps: [
          { method: "GET", path: "/", expect: { status: 302, cell: "cell_eu0", cache: "bypass", learned: "cell_eu1",
                                                location: "/o/my-company/-/dashboard" } },
          { method: "GET", follow: true, expect: { status: 200, cell: "cell_eu0", cache: "miss", learned: "cell_eu0" } },
          { method: "GET", path: "/", expect: { status: 302, cell: "cell_eu0", cache: "bypass", learned: "cell_eu1",
                                                location: "/o/my-company/-/dashboard" } },
          { method: "GET", path: "/", anonymous: true,
            expect: { status: 302, cell: "cell_eu1", cache: "bypass", learned: "cell_eu1", location: "/users/sign_in" } }
        ]
      ),
      Flow.new(
        id: "private-project-404",
        title: "A private project the signed-in user cannot see answers 404",
        seed: "bob belongs to my-company but is no member of my-company/secret: cell_eu0 answers 404, as GitLab does " \
              "for projects a user may not know about.",
        router: "router_eu", user: "bob",
        steps: [
          { method: "GET", path: "/my-company/secret", expect: { status: 404, cell: "cell_eu0", cache: "hit" } }
        ]
      ),
      Flow.new(
        id: "profile-exact",
        title: "/-/profile is an exact fixed route",
        seed: "The answer is {\"path\":\"/-/profile\",...,\"exact\":true}: it covers /-/profile only, so /-/profile/account " \
              "is learned on its own (a prefix answer this time).",
        router: "router_eu", user: "alice",
        steps: [
          { method: "GET", path: "/-/profile", expect: { status: 200, cell: "cell_us0", cache: "miss", learned: "cell_us0" } },
          { method: "GET", path: "/-/profile", expect: { status: 200, cell: "cell_us0", cache: "hit" } },
          { method: "GET", path: "/-/profile/account", expect: { status: 200, cell: "cell_us0", cache: "miss", learned: "cell_us0" } }
        ]
      ),
      Flow.new(
        id: "organization-from-eu",
        title: "router_eu learns where acme-corp lives, for both routers",
        seed: "A miss: router_eu learns that acme-corp lives on cell_us1 and writes it to the routers' shared cache (Redis).",
        router: "router_eu", user: "wile",
        steps: [
          { method: "GET", path: "/acme-corp/website", expect: { status: 200, cell: "cell_us1", cache: "miss", learned: "cell_us1" } }
        ]
      ),
      Flow.new(
        id: "organization-moved",
        title: "An organization moves to another cell, and every router hears of it (the seed's TODO)",
        seed: "router_us reads acme-corp's cell from the shared cache (no learn request). Then acme-corp moves from cell_us1 " \
              "to cell_eu1: the application publishes a purge of /acme-corp (Gitlab::Cells::Learn::Invalidation), both " \
              "routers drop the entry, and the next request is learned again and goes straight to cell_eu1, no 421.",
        router: "router_us", user: "wile",
        steps: [
          { method: "GET", path: "/acme-corp/website", expect: { status: 200, cell: "cell_us1", cache: "shared" } },
          { method: "GET", path: "/acme-corp/website", before: :move_acme_corp, note: "acme-corp moves to cell_eu1 (UPDATE routes, purge /acme-corp)",
            expect: { status: 200, cell: "cell_eu1", cache: "miss", learned: "cell_eu1" } },
          { method: "GET", path: "/acme-corp/website/-/issues", expect: { status: 200, cell: "cell_eu1", cache: "hit" } }
        ]
      ),
      Flow.new(
        id: "organization-moved-eu",
        title: "The other router after the move",
        seed: "router_eu dropped /acme-corp with the purge; router_us's new answer is in the shared cache: cell_eu1, no 421.",
        router: "router_eu", user: "wile",
        steps: [
          { method: "GET", path: "/acme-corp/website", expect: { status: 200, cell: "cell_eu1", cache: "shared" } }
        ]
      )
    ].freeze
  end
end
