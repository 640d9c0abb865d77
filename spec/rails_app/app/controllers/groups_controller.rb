# frozen_string_literal: true

class GroupsController < ApplicationController
  actions :index, :new, :create, :show, :edit, :update, :destroy, :issues, :merge_requests, :activity
end
