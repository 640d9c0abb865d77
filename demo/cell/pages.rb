# frozen_string_literal: true

require "erb"
require "rack"
require "uri"

module Demo
  module Cell
    # The pages of a cell, answering the way GitLab answers: the route is the one Rails would pick
    # (the classifier's #recognize over the same route table the learn endpoint uses), the data is
    # the global routes/users tables, and access follows GitLab's rules (a private project sends
    # anonymous users to sign in and answers 404 to signed-in users without access).
    class Pages
      SESSION_COOKIE = "_gitlab_session"
      VIEWS = File.join(__dir__, "views")
      TEMPLATES = %w[layout project namespace dashboard profile sign_in message].to_h do |name|
        erb = ERB.new(File.read(File.join(VIEWS, "#{name}.html.erb")), trim_mode: "-")
        erb.filename = File.join(VIEWS, "#{name}.html.erb")
        [name, erb]
      end.freeze

      # What the templates see: the locals as methods, and ERB::Util#h.
      class View
        include ERB::Util

        def initialize(locals)
          locals.each { |name, value| define_singleton_method(name) { value } }
        end

        def render(erb)
          erb.result(binding)
        end
      end

      # A top-level namespace name that needs no escaping in a cache header.
      PLAIN_SEGMENT = /\A[A-Za-z0-9_.-]+\z/

      # @param cell [String] this cell's name
      # @param region [String]
      # @param classifier [Gitlab::Cells::Learn::Classifier]
      # @param directory [Directory]
      def initialize(cell:, region:, classifier:, directory:)
        @cell = cell
        @region = region
        @classifier = classifier
        @directory = directory
      end

      def call(env)
        req = Rack::Request.new(env)
        path = "#{env["SCRIPT_NAME"]}#{env["PATH_INFO"]}"
        path = "/" if path.empty?
        match = @classifier.recognize(req.request_method, path)
        user = @directory.session_user(req.cookies[SESSION_COOKIE])
        return not_found(user) unless match

        dispatch(req, user, match.route.endpoint.to_s, match.params)
      rescue Gitlab::Cells::Learn::InvalidRequestError
        not_found(nil)
      rescue DB::Error => e
        warn "[#{@cell}] database error: #{e.message}"
        page(503, "Service unavailable", "message", { message: "The database is not available: #{e.message}" }, nil)
      end

      private

      def dispatch(req, user, endpoint, params)
        controller, action = endpoint.split("#", 2)
        get = %w[GET HEAD].include?(req.request_method)
        case controller
        when "root" then root(req, user)
        when "dashboard", "dashboard/projects" then dashboard(req, user)
        when "profiles", "accounts", "keys", "gpg_keys", "notifications"
          return sign_in_redirect(req) unless user

          get ? page(200, "Profile", "profile", { section: endpoint }, user) : unprocessable(user)
        when "sessions" then sessions(req, user, action)
        when "organizations" then organization(req, user, params["organization_path"], action)
        when %r{\Aprojects/} then project(req, user, params, endpoint, get)
        when "users" then action == "show" ? top_level(req, user, params["username"]) : not_found(user)
        when "groups", %r{\Agroups/} then group(req, user, params["group_id"] || params["id"], get)
        when "help", "search", "snippets", %r{\Aexplore/}
          get ? page(200, controller.capitalize.tr("/", " "), "message", { message: "#{endpoint} on #{@cell}" }, user) : unprocessable(user)
        when %r{\Aadmin/}
          user ? not_found(user) : sign_in_redirect(req) # nobody in the seed is an administrator
        else not_found(user)
        end
      end

      # `/`: signed-in users go to their organization's dashboard, others to sign in.
      def root(req, user)
        return sign_in_redirect(req) unless user

        org = @directory.route("Organization", user["organization"])
        redirect(req, org ? "/o/#{org["path"]}/-/dashboard" : "/dashboard/projects")
      end

      def dashboard(req, user)
        return sign_in_redirect(req) unless user

        projects = @directory.visible_projects(user)
        page(200, "Your projects", "dashboard", { intro: "Projects on every cell that #{user["username"]} can see.", projects: projects }, user)
      end

      def organization(req, user, org_path, action)
        org = @directory.route("Organization", org_path.to_s) or return not_found(user)
        return sign_in_redirect(req) if action == "dashboard" && !user

        projects = @directory.visible_projects(user, prefix: org["path"])
        title = action == "dashboard" ? "#{org["name"]} dashboard" : org["name"]
        page(200, title, "dashboard", { intro: "Organization #{org["path"]} on #{org["cell_id"]}.", projects: projects }, user)
      end

      def project(req, user, params, endpoint, get)
        full_path = "#{params["namespace_id"]}/#{params["project_id"]}"
        widen = namespace_header(params["namespace_id"].to_s.split("/").first)
        project = @directory.route("Project", full_path) or return not_found(user, widen)
        unless @directory.can_read?(user, project)
          return user ? not_found(user, widen) : sign_in_redirect(req, widen)
        end
        return unprocessable(user, widen) unless get

        section = endpoint == "projects/projects#show" ? nil : endpoint.split("#").first.split("/").last.tr("_", " ")
        title = section ? "#{section.capitalize} · #{project["path"]}" : project["path"]
        page(200, title, "project", { project: project, section: section, endpoint: endpoint }, user, widen)
      end

      def top_level(_req, user, name)
        widen = namespace_header(name)
        namespace = @directory.top_level(name.to_s) or return not_found(user, widen)

        kind = namespace["source_type"] == "User" ? "User" : "Group"
        projects = @directory.visible_projects(user, prefix: namespace["path"])
        page(200, namespace["name"], "namespace", { namespace: namespace, kind: kind, projects: projects }, user, widen)
      end

      def group(_req, user, full_path, get)
        namespace = @directory.route("Namespace", full_path.to_s) or return not_found(user)
        return unprocessable(user) unless get

        projects = @directory.visible_projects(user, prefix: namespace["path"])
        page(200, namespace["name"], "namespace", { namespace: namespace, kind: "Group", projects: projects }, user)
      end

      def sessions(req, user, action)
        case action
        when "sign_in"
          page(200, "Sign in", "sign_in", { redirect_to: nil, usernames: usernames, error: nil }, user)
        when "sign_in_create"
          found = @directory.user(req.POST["login"].to_s)
          unless found
            return page(200, "Sign in", "sign_in", { redirect_to: req.POST["redirect_to"], usernames: usernames,
                                                     error: "Invalid login or password." }, nil)
          end
          target = req.POST["redirect_to"].to_s
          target = "/" unless target.start_with?("/") && !target.start_with?("//")
          status, headers, body = redirect(req, target)
          Rack::Utils.set_cookie_header!(headers, SESSION_COOKIE,
                                         value: @directory.create_session(found), path: "/", httponly: true, same_site: :lax)
          [status, headers, body]
        when "sign_out", "sign_out_create"
          @directory.destroy_session(req.cookies[SESSION_COOKIE])
          status, headers, body = redirect(req, "/users/sign_in")
          Rack::Utils.delete_cookie_header!(headers, SESSION_COOKIE, path: "/")
          [status, headers, body]
        else
          page(200, "Account", "message", { message: "sessions##{action} on #{@cell}" }, user)
        end
      end

      def usernames
        @directory.db.query("SELECT username FROM users ORDER BY id").map { |r| r["username"] }
      end

      # `X-Gitlab-Cell-Cache: path=/<namespace>; cell=<this cell>` when this cell owns the top-level
      # namespace: an organization lives on one cell, so everything under its namespaces does too, and
      # the router may cache the whole namespace instead of one project at a time.
      def namespace_header(top)
        return {} unless top && PLAIN_SEGMENT.match?(top) && @directory.top_level_cell(top) == @cell

        { Gitlab::Cells::Learn::CacheHeader::NAME => Gitlab::Cells::Learn::CacheHeader.format(path: "/#{top}", cell: @cell) }
      end

      def sign_in_redirect(req, extra = {})
        redirect(req, "/users/sign_in", extra)
      end

      # Absolute, as Rails' redirect_to writes it: the host the client used (X-Forwarded-Host from the router).
      def redirect(req, location, extra = {})
        body = "<html><body>You are being <a href=\"#{ERB::Util.h(req.base_url + location)}\">redirected</a>.</body></html>"
        [302, { "Location" => req.base_url + location, "Content-Type" => "text/html; charset=utf-8",
                "Cache-Control" => "no-cache", "Content-Length" => body.bytesize.to_s }.merge(extra), [body]]
      end

      def not_found(user, extra = {})
        page(404, "Page not found", "message", { message: "The page could not be found or you don't have permission to view it." }, user, extra)
      end

      def unprocessable(user, extra = {})
        page(422, "Unprocessable", "message", { message: "Can't verify CSRF token authenticity." }, user, extra)
      end

      def page(status, title, template, locals, user, extra = {})
        content = View.new(locals.merge(user: user, cell: @cell)).render(TEMPLATES.fetch(template))
        html = View.new(title: title, content: content, cell: @cell, region: @region, user: user).render(TEMPLATES.fetch("layout"))
        headers = { "Content-Type" => "text/html; charset=utf-8", "Cache-Control" => "private, no-store",
                    "Content-Length" => html.bytesize.to_s }
        [status, headers.merge(extra), [html]]
      end
    end
  end
end
