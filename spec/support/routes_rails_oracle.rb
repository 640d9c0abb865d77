# frozen_string_literal: true

require "action_dispatch"
require "rack/mock"

# Asks Rails' own router (actionpack 6.1 Journey) which route it picks for a request.
module RoutesRailsOracle
  # Rails' pick: the route and the path parameters Journey extracted (unescaped, as
  # `Router#find_routes` does; defaults not merged).
  Pick = Struct.new(:route, :params)

  module_function

  # A Rack env for the raw path. `Rack::MockRequest.env_for` is used where it keeps the path as
  # it is; paths URI parsing rejects or rewrites (`//x`, raw unicode, backslashes) are set
  # directly, as a server would pass them.
  def env_for(method, raw)
    path, query = raw.split("?", 2)
    env = begin
      Rack::MockRequest.env_for(raw, method: method)
    rescue URI::InvalidURIError, ArgumentError
      nil
    end
    if env.nil? || env["PATH_INFO"] != path
      env = Rack::MockRequest.env_for("/", method: method)
      env["PATH_INFO"] = path
      env["QUERY_STRING"] = query.to_s
    end
    env
  end

  # The first route `route_set.router.recognize` yields (with always-true dynamic constraints,
  # the one Rails serves), after the path normalization `RouteSet#call` applies.
  # @return [Pick, nil]
  def pick(route_set, method, raw)
    # The first route yielded is Rails' pick: the loop is meant to end there.
    each_pick(route_set, method, raw) { |pick| return pick } # rubocop:disable Lint/UnreachableLoop
    nil
  end

  # Every route `route_set.router.recognize` yields, in its order, as a {Pick} (the structural
  # matches: dynamic constraints are asked only when Rails serves the request).
  def each_pick(route_set, method, raw)
    req = ActionDispatch::Request.new(env_for(method, raw))
    req.path_info = ActionDispatch::Journey::Router::Utils.normalize_path(req.path_info)
    path_info = req.path_info.dup
    route_set.router.recognize(req) do |route, _params|
      yield Pick.new(route, params_of(route, path_info))
    end
  end

  # Journey's parameters for a route and a normalized path (`Router#find_routes`).
  def params_of(route, path_info)
    match = route.path.match(path_info)
    match.names.each_with_index.each_with_object({}) do |(name, i), out|
      value = match[i + 1]
      out[name.to_s] = ActionDispatch::Journey::Router::Utils.unescape_uri(value) if value
    end
  end

  # Rails' 400 when it serves the request: a parameter of the route it picked is not UTF-8.
  def param_not_utf8?(pick)
    pick ? pick.params.values.any? { |v| !v.dup.force_encoding(Encoding::UTF_8).valid_encoding? } : false
  end

  # Compares byte-wise: Journey's unescaped values may be binary, ours UTF-8.
  def same_params?(a, b)
    a.transform_values(&:b) == b.transform_values(&:b)
  end
end
