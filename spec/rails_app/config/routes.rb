# frozen_string_literal: true

# Shaped like GitLab's config/routes.rb and config/routes/{group,user,project}.rb, in their order.
# Redirects and the mounted Rack app are wrapped in Dispatched so that they too say which route
# Rails dispatched to (a redirect has no controller); each is named, and the name is what it says.
Rails.application.routes.draw do
  recorded = ->(name, app) { Dispatched.new(name, app) }

  # The learn endpoint, where the monolith mounts it: before the API, which claims /api.
  mount LearnRouteHeader.new(Gitlab::Cells::Learn::Endpoint.new(classifier: Gitlab::Cells::Learn::Railtie.classifier,
                                                                resolver: CellResolver)) => Gitlab::Cells::Learn::Endpoint::MOUNT_PATH,
        as: :cells_learn
  mount API => "/"
  mount recorded.call(:health, HealthApp) => "/-/health", as: :health

  # Devise's devise_for :users, written out.
  scope path: "users", as: :user do
    get "sign_in", to: "sessions#new", as: :new_session
    post "sign_in", to: "sessions#create", as: :session
    post "sign_out", to: "sessions#destroy", as: :destroy_session
    delete "sign_out", to: "sessions#destroy"
    get "sign_up", to: "registrations#new", as: :new_registration
    post "/", to: "registrations#create", as: :registration
    get "password/new", to: "passwords#new", as: :new_password
    get "password/edit", to: "passwords#edit", as: :edit_password
    match "password", to: "passwords#update", via: %i[patch put], as: :password
    post "password", to: "passwords#create"
  end

  root to: "root#index"
  get "/help", to: "help#index"
  get "/help/*path", to: "help#show", as: :help_page
  get "/dashboard/help", to: recorded.call(:dashboard_help, redirect("/help")), as: :dashboard_help

  scope path: "-" do
    resource :profile, only: %i[show update] do
      resources :keys, controller: "profiles/keys", only: %i[index show create destroy]
    end
  end

  namespace :explore do
    resources :projects, only: [:index] do
      collection { get :trending }
    end
  end

  namespace :dashboard do
    resources :projects, only: [:index] do
      collection { get :starred }
    end
  end
  scope path: "dashboard", controller: :dashboard, as: :dashboard do
    get :issues
    get :merge_requests
    get :activity
  end
  get "/dashboard", to: "dashboard/projects#index", as: :dashboard

  # config/routes/group.rb
  constraints(Constraints::GroupUrlConstrainer.new) do
    scope(path: "groups/*id", controller: :groups,
          constraints: { id: PathRegex.full_namespace_route_regex, format: /(html|json|atom)/ }) do
      scope(path: "-") do
        get :edit, as: :edit_group
        get :issues, as: :issues_group
        get :merge_requests, as: :merge_requests_group
        get :activity, as: :activity_group
      end
      get "/", action: :show, as: :group_canonical
    end

    scope(path: "groups/*group_id/-", module: :groups, as: :group,
          constraints: { group_id: PathRegex.full_namespace_route_regex }) do
      resources :milestones, constraints: { id: %r{[^/]+} }, only: %i[index show]
    end
  end
  resources :groups, only: %i[index new create]
  scope(path: "groups/*id", controller: :groups, constraints: { id: PathRegex.full_namespace_route_regex, format: /(html|json|atom)/ }) do
    match "/", action: :update, via: %i[patch put], as: :update_group
    delete "/", action: :destroy, as: :destroy_group
  end

  # config/routes/user.rb
  scope(path: "users/:username", as: :user, constraints: { username: PathRegex.root_namespace_route_regex }, controller: :users) do
    get :calendar
    get :projects
    get :groups
    get "/", to: recorded.call(:user_legacy, redirect("/%{username}")), as: :legacy
  end
  get "/u/:username", to: recorded.call(:user_short, redirect("/users/%{username}")), as: :user_short,
                      constraints: { username: PathRegex.root_namespace_route_regex }

  # config/routes/project.rb
  constraints(Constraints::ProjectUrlConstrainer.new) do
    scope(path: "*namespace_id", as: :namespace, namespace_id: PathRegex.full_namespace_route_regex) do
      scope(path: ":project_id", constraints: { project_id: PathRegex.project_route_regex }, module: :projects, as: :project) do
        scope "-" do
          resources :issues
          resources :merge_requests, only: %i[index show] do
            member { get :diffs }
          end
          get "/tree/*id", to: "tree#show", as: :tree, format: false
          get "/blob/*id", to: "blob#show", as: :blob, format: false
        end
        # The legacy spelling without /-/, redirected.
        get "issues(/*rest)", to: recorded.call(:namespace_project_legacy_issues, redirect("/%{namespace_id}/%{project_id}/-/issues")),
                              as: :legacy_issues, format: false
      end
    end

    scope(path: "*namespace_id", as: :namespace, namespace_id: PathRegex.full_namespace_route_regex) do
      resources(:projects, path: "/", constraints: { id: PathRegex.project_route_regex }, only: %i[edit show update destroy])
    end
  end
  resources :projects, only: %i[new create]

  # The user and group pages at the root, last: their constrainers decide what /:x is.
  constraints(Constraints::UserUrlConstrainer.new) do
    scope(path: ":username", as: :user, constraints: { username: PathRegex.root_namespace_route_regex }, controller: :users) do
      get "/", action: :show
    end
  end

  constraints(Constraints::GroupUrlConstrainer.new) do
    scope(path: "*id", as: :group, constraints: { id: PathRegex.full_namespace_route_regex, format: /(html|json|atom)/ }, controller: :groups) do
      get "/", action: :show
      match "/", action: :update, via: %i[patch put]
      delete "/", action: :destroy
    end
  end
end
