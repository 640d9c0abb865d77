# frozen_string_literal: true

# Route tables and requests ported from Rails 6.1's own routing tests
# (actionpack/test/journey/router_test.rb, actionpack/test/dispatch/routing_test.rb,
# actionpack/test/controller/routing_test.rb): each entry draws the test's routes into a fresh
# RouteSet and lists the paths the test requests. spec/rails_suite_port_spec.rb compares the gem
# with Rails' router on those paths and on near-misses generated from the drawn table.
module RailsSuiteTables
  Table = Struct.new(:source, :name, :draw, :requests, keyword_init: true)

  APP = ->(_env) { [200, {}, ["ok"]] }

  # @return [Array<Table>]
  def self.all
    journey_router + dispatch_routing + controller_routing
  end

  def self.table(source, name, requests, &draw)
    Table.new(source: source, name: name, draw: draw, requests: requests)
  end

  # actionpack/test/journey/router_test.rb
  def self.journey_router
    src = "journey/router_test.rb"
    [
      table(src, "test_dashes", %w[/foo-bar-baz /foo-bar /foo-bar-baz/]) { get "/foo-bar-baz", to: APP },
      table(src, "test_unicode", %w[/%E3%81%BB%E3%81%92 /ほげ]) { get "/%E3%81%BB%E3%81%92", to: APP },
      table(src, "test_regexp_first_precedence", %w[/whois/example.com /whois/example /whois/example.com.json]) do
        get "/whois/:domain", to: APP, constraints: { domain: /\w+\.[\w.]+/ }
        get "/whois/:id(.:format)", to: APP
      end,
      table(src, "test_path_not_found", %w[/messages/unknown/path /messages /messages/new /messages/1/edit /messages/1.json]) do
        get "/messages(.:format)", to: APP
        get "/messages/new(.:format)", to: APP
        get "/messages/:id/edit(.:format)", to: APP
        get "/messages/:id(.:format)", to: APP
      end,
      table(src, "test_recognize_with_unbound_regexp", %w[/foo/bar /foo /foobar /foo.json]) { mount APP, at: "/foo" },
      table(src, "test_recognize_segment_and_splat", ["/a%2Fb%20c+d/splat", "/segment/a/b%20c+d", "/x", "/x/y/z"]) do
        get "/:segment/*splat", to: APP
      end,
      table(src, "test_namespaced_controller", %w[/admin/users/show/10 /admin /admin/users]) do
        get "/:controller(/:action(/:id))", to: APP, constraints: { controller: /.+?/ }
      end,
      table(src, "test_recognize_literal", %w[/books/list.rss /books /books/list /books/list.rss/x]) do
        get "/books(/:action(.:format))", to: APP
      end,
      table(src, "test_recognize_head_request_as_get_route", %w[/books/list.rss /books]) do
        get "/books(/:action(.:format))", to: APP
      end,
      table(src, "test_recognize_cares_about_verbs", %w[/books/list.rss /books]) do
        post "/books(/:action(.:format))", to: APP
        get "/books(/:action(.:format))", to: APP
      end,
      table(src, "test_multi_verb_recognition", %w[/books/list.rss /books]) { match "/books(/:action(.:format))", to: APP, via: %i[get post] },
      table(src, "test_star_with_requirements", %w[/foo/bar /foo/123 /foo/1/2 /foo]) do
        get "/foo/*rest", to: APP, constraints: { rest: /\d+/ }, format: false
        get "/foo/*rest", to: APP, format: false
      end,
      table(src, "test_optional_star_with_format", %w[/ /foo /foo/bar.json /foo.json]) { get "(/*path)(.:format)", to: APP }
    ]
  end

  # actionpack/test/dispatch/routing_test.rb (TestRoutingMapper and friends)
  def self.dispatch_routing
    src = "dispatch/routing_test.rb"
    [
      table(src, "test_resources", %w[/projects /projects/1 /projects/new /projects/1/edit /projects/1.json /projects/1/people /projects/1/people/2
                                      /projects/1/people/2/edit /projects/1/companies/2/avatar /projects/new.xml /projects/1/edit/x]) do
        resources :projects do
          resources :people
          resources :companies do
            resource :avatar
          end
        end
      end,
      table(src, "test_namespace_and_scope", %w[/admin/users /admin/users/1 /admin/accounts /account/subscription /account/credit_card
                                                /api/v1/products /api/v1/products/1.xml /de/products]) do
        namespace :admin do
          resources :users
          get "accounts", to: "accounts#index"
        end
        scope "account" do
          get "subscription", to: "account#subscription"
          get "credit_card", to: "account#credit_card"
        end
        namespace :api do
          scope "v1" do
            resources :products, only: %i[index show]
          end
        end
        scope "(:locale)", locale: /en|de/ do
          resources :products, only: :index
        end
      end,
      table(src, "test_globbing", %w[/account/a/b/c /account/a.json /page/x /page/a/b.html /page]) do
        get "account/*path", to: "account#show"
        get "page/*id(.:format)", to: "pages#show", format: true
        get "page", to: "pages#index"
      end,
      table(src, "test_constraints", %w[/articles/2011 /articles/20 /articles/2011/01 /articles/abc /people/1 /people/x.json /posts/1.2.3]) do
        get "articles/:year(/:month)", to: "articles#index", constraints: { year: /\d{4}/, month: /\d{2}/ }
        get "people/:id", to: "people#show", constraints: { id: /\d+/ }
        get "posts/:id", to: "posts#show", constraints: { id: %r{[^/]+} }
      end,
      table(src, "test_format_false_and_optional_format", %w[/foo /foo.json /bar /bar.json /baz.json /baz]) do
        get "foo", to: "foo#index", format: false
        get "bar", to: "bar#index", format: true
        get "baz(.:format)", to: "baz#index"
      end,
      table(src, "test_shallow_and_concerns", %w[/messages/1/comments /comments/2 /comments/2/edit /posts/1/comments /messages/1/comments/new]) do
        concern :commentable do
          resources :comments, shallow: true
        end
        resources :messages, concerns: :commentable
        resources :posts, concerns: :commentable, only: :index
      end,
      table(src, "test_match_with_many_verbs_and_redirect", %w[/lol /lol.json /hello /hello/world /old/1 /new/1]) do
        match "/lol", to: "lol#index", via: %i[get head]
        get "/hello(/:name)", to: "hello#show"
        get "/old/:id", to: APP
        match "/new/:id", to: "new#show", via: :all
      end,
      table(src, "test_repeated_parameter_and_array_requirement", %w[/downloads/1/2.tar /items/first /items/last /items/middle]) do
        get "/downloads/:id/:id.tar", to: "downloads#show"
        get "/items/:idx", to: "items#show", constraints: { idx: %w[first last] }
      end,
      table(src, "test_dashes_dots_and_literals_around_params", %w[/foo-1-bar /foo-1-2 /a.b.c /1.2.3.4/x /v1.0/users]) do
        get "/foo-:id-bar", to: "foo#show"
        get "/:a.:b.:c", to: "abc#show"
        get "/:ip/x", to: "ip#show", constraints: { ip: /\d+\.\d+\.\d+\.\d+/ }
        get "/v:version/users", to: "users#index", constraints: { version: /\d+\.\d+/ }
      end,
      table(src, "test_default_scope_root_and_nested_optional", %w[/ /about /about/team /about/team/1 /x.json]) do
        root to: "home#index"
        get "/about(/:section(/:id))", to: "about#show"
      end
    ]
  end

  # actionpack/test/controller/routing_test.rb (LegacyRouteSetTests)
  def self.controller_routing
    src = "controller/routing_test.rb"
    [
      table(src, "test_default_setup", %w[/content /content/list /content/show/10 /admin/user/show/10 /content/show/10.xml]) do
        get ":controller(/:action(/:id(.:format)))"
      end,
      table(src, "test_route_with_regexp_for_action", %w[/foo/show /foo/list /foo/other /foo]) do
        get "/foo/:action", controller: "foo", constraints: { action: /show|list/ }
      end,
      table(src, "test_should_list_options_diff_when_routes_constraints_dont_match", %w[/post/1 /post/abc]) do
        get "post/:id", to: "post#show", constraints: { id: /\d+/ }, as: "post"
      end,
      table(src, "test_recognize_with_encoded_id_and_regex", %w[/page/10 /page/hi /page/%E3%81%BB /page/%2F]) do
        get "page/:id", to: "pages#show", constraints: { id: /[a-zA-Z0-9+]+/ }
      end,
      table(src, "test_route_requirement_recognize_with_ignore_case", %w[/page/JAMIS /page/jamis /page/JAMISxxx]) do
        get "page/:name", to: "pages#show", constraints: { name: /(david|jamis)/i }
      end,
      table(src, "test_route_requirement_recognize_with_extended_syntax", %w[/page/JAMIS /page/david /page/davidjamis]) do
        get "page/:name", to: "pages#show", constraints: { name: / # Desperately overcommented regexp
                                                                    ( #Either
                                                                     david #The Creator
                                                                    | #Or
                                                                      jamis #The Deployer
                                                                    )/x }
      end,
      table(src, "test_recognize_with_http_methods", %w[/people /people/new /people/1 /people/1/edit /people/1/stale]) do
        get    "/people",     to: "people#index"
        post   "/people",     to: "people#create"
        get    "/people/:id", to: "people#show"
        put    "/people/:id", to: "people#update"
        patch  "/people/:id", to: "people#update"
        delete "/people/:id", to: "people#destroy"
      end,
      table(src, "test_non_greedy_glob_regexp", %w[/posts/foo/bar.html /posts/foo.bar/baz.json /posts/foo]) do
        get "/posts/*path", to: "pages#show", constraints: { path: /.+?/ }
      end,
      table(src, "test_optional_star_paths_are_greedy", %w[/file/some/path.rb /file/x]) do
        get "/file/*path", to: "content#show_file", format: false
      end,
      table(src, "test_regexp_precedence", %w[/whois/example.org /whois/123.4.5.6 /whois/123]) do
        get "/whois/:domain", to: "whois#domain", constraints: { domain: /\w+\.[\w.]+/ }
        get "/whois/:id", to: "whois#id"
      end
    ]
  end
end
