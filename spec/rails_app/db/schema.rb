# frozen_string_literal: true

# The tables GitLab's URL constrainers read, reduced to the columns they use: `routes` holds the
# full path of every group, user namespace and project (looked up case-insensitively, as
# Route.find_by_full_path does); `redirect_routes` the old paths of renamed ones, followed for GET
# only.
ActiveRecord::Schema.define(version: 1) do
  create_table :namespaces, force: true do |t|
    t.string :type, null: false # "Group" or "Namespaces::UserNamespace"
    t.string :path, null: false
    t.integer :parent_id
    t.string :cell, null: false
  end

  create_table :users, force: true do |t|
    t.string :username, null: false
    t.integer :namespace_id, null: false
  end

  create_table :projects, force: true do |t|
    t.string :path, null: false
    t.integer :namespace_id, null: false
  end

  create_table :routes, force: true do |t|
    t.string :source_type, null: false
    t.integer :source_id, null: false
    t.string :path, null: false
  end
  add_index :routes, :path, unique: true

  create_table :redirect_routes, force: true do |t|
    t.string :source_type, null: false
    t.integer :source_id, null: false
    t.string :path, null: false
  end
  add_index :redirect_routes, :path, unique: true
end
